// Train: a style LoRA from library images with their captions. The run is a job; each of its
// progress events redraws the loss curve from the run's log (no timers) and, at checkpoints,
// adds the sample images. "Use this LoRA" hands the finished LoRA to the Generate screen.
import {
  commands,
  type JobEvent_Serialize as JobEvent,
  type LoraTargets,
  type LrSchedule,
  type TrainSpec_Deserialize as TrainSpec,
  type TrainStatus_Serialize as TrainStatus,
} from "../bindings";
import { jobRow, updateJobRow } from "../components/jobrow";
import { byId, describe, el, setState } from "../dom";
import { catchUp, onJobEvent } from "../jobs";
import { lossPolyline, submittedEvent } from "../logic";

/** Training jobs started here, and the samples already shown (`step/index`). */
const runs = new Set<string>();
const shownSamples = new Set<string>();
let current: string | null = null;
let finished: string | null = null;
const SVG = "http://www.w3.org/2000/svg";

function num(id: string): number {
  return Number(byId<HTMLInputElement>(id).value);
}

/** The library's images as rows: pick, thumbnail, name, caption (the prompt if it has one). */
export async function loadTrain(): Promise<void> {
  const [lib, models] = await Promise.all([commands.libraryList(), commands.modelsList()]);
  if (models.status === "ok") {
    const sel = byId<HTMLSelectElement>("train-model");
    if (sel.options.length === 0) {
      sel.replaceChildren(
        ...models.data
          .filter((m) => !m.addon)
          .map((m) => el("option", { value: m.id }, `${m.name}${m.installed ? "" : " (not installed)"}`)),
      );
    }
  }
  if (lib.status === "error") return setState("train-state", describe(lib.error), true);
  const table = byId<HTMLTableElement>("train-images");
  const picked = new Set(
    [...table.querySelectorAll<HTMLInputElement>("input.pick:checked")].map((i) => i.value),
  );
  const rows = lib.data
    .filter((a) => (a.kind === "image" || a.kind === "tile") && !a.damaged)
    .map((a) => {
      const tr = el("tr", { "data-asset": a.id });
      const pick = el("input", { type: "checkbox", class: "pick", value: a.id });
      pick.checked = picked.has(a.id);
      const caption = el("input", { type: "text", class: "caption", value: a.prompt ?? "" });
      caption.placeholder = "what this image shows";
      const img = el("img", { alt: "" });
      void commands.assetThumbnail(a.id).then((r) => {
        if (r.status === "ok") img.src = r.data;
      });
      const cells: [HTMLElement, ...HTMLElement[]][] = [[pick], [img], [el("span", {}, a.name)], [caption]];
      for (const c of cells) {
        const td = el("td");
        td.append(...c);
        tr.append(td);
      }
      return tr;
    });
  table.replaceChildren(...rows);
  if (rows.length === 0) setState("train-state", "the library has no images yet: generate or import some first");
}

function spec(): TrainSpec | string {
  const rows = [...byId("train-images").querySelectorAll<HTMLTableRowElement>("tr")].filter(
    (tr) => tr.querySelector<HTMLInputElement>("input.pick")?.checked,
  );
  if (rows.length === 0) return "pick at least one image to train on";
  const captions: Record<string, string> = {};
  for (const tr of rows) {
    const text = tr.querySelector<HTMLInputElement>("input.caption")?.value.trim() ?? "";
    if (text !== "") captions[tr.dataset.asset ?? ""] = text;
  }
  const seed = byId<HTMLInputElement>("train-seed").value;
  const text = (id: string) => byId<HTMLInputElement>(id).value.trim() || null;
  return {
    name: byId<HTMLInputElement>("train-name").value.trim(),
    model: byId<HTMLSelectElement>("train-model").value,
    dataset: rows.map((tr) => tr.dataset.asset ?? ""),
    captions,
    trigger: text("train-trigger"),
    caption_template: text("train-template"),
    resolution: num("train-resolution"),
    steps: num("train-steps"),
    learning_rate: num("train-lr"),
    schedule: byId<HTMLSelectElement>("train-schedule").value as LrSchedule,
    warmup_steps: num("train-warmup"),
    rank: num("train-rank"),
    alpha: num("train-alpha"),
    targets: byId<HTMLSelectElement>("train-targets").value as LoraTargets,
    repeats: num("train-repeats"),
    checkpoint_every: num("train-every"),
    flip: byId<HTMLInputElement>("train-flip").checked,
    gradient_checkpointing: byId<HTMLInputElement>("train-recompute").checked,
    seed: seed === "" ? null : Number(seed),
    sample_prompts: byId<HTMLTextAreaElement>("train-samples")
      .value.split("\n")
      .map((l) => l.trim())
      .filter((l) => l !== ""),
  };
}

async function start(ev: Event): Promise<void> {
  ev.preventDefault();
  const s = spec();
  if (typeof s === "string") return setState("train-state", s, true);
  const r = await commands.trainStart(s);
  if (r.status === "error") return setState("train-state", describe(r.error), true);
  runs.add(r.data.id);
  current = r.data.id;
  shownSamples.clear();
  byId("train-samples-grid").replaceChildren();
  byId("train-lora").hidden = true;
  byId("train-jobs").prepend(jobRow(submittedEvent(r.data), "train-job"));
  setState("train-state", `training ${s.name ?? ""}: job ${r.data.id.slice(0, 8)} queued`);
  catchUp(r.data.id, onEvent);
}

function drawLoss(status: TrainStatus): void {
  const svg = byId("train-loss");
  const [w, h] = [400, 160];
  const line = lossPolyline(status.points, w, h);
  const axis = document.createElementNS(SVG, "line");
  for (const [k, v] of Object.entries({ x1: "0", y1: String(h), x2: String(w), y2: String(h) })) {
    axis.setAttribute(k, v);
  }
  const poly = document.createElementNS(SVG, "polyline");
  poly.setAttribute("points", (line?.path ?? []).map(([x, y]) => `${x.toFixed(1)},${y.toFixed(1)}`).join(" "));
  svg.replaceChildren(axis, poly);
  svg.dataset.points = String(status.points.length);
  const last = status.points.at(-1);
  const loss = (last?.loss ?? Number.NaN).toFixed(4);
  byId("train-loss-caption").textContent =
    last && line
      ? `step ${last.step}: loss ${loss} (range ${line.min.toFixed(4)}–${line.max.toFixed(4)})`
      : last
        ? `step ${last.step}: loss ${loss}`
        : "";
}

async function showSamples(status: TrainStatus): Promise<void> {
  const grid = byId("train-samples-grid");
  for (const s of status.samples) {
    for (let i = 0; i < s.files.length; i++) {
      const key = `${s.step}/${i}`;
      if (shownSamples.has(key)) continue;
      shownSamples.add(key);
      const r = await commands.trainSample(status.job.id, s.step, i);
      if (r.status !== "ok") continue;
      const fig = el("figure", { "data-step": String(s.step), class: "train-sample" });
      fig.append(el("img", { src: r.data, alt: `step ${s.step}` }), el("figcaption", {}, `step ${s.step} · ${i + 1}`));
      grid.append(fig);
    }
  }
}

async function refresh(id: string): Promise<void> {
  const r = await commands.trainStatus(id);
  if (r.status === "error") return;
  const status = r.data as TrainStatus;
  drawLoss(status);
  await showSamples(status);
  if (status.lora && status.job.state === "succeeded") {
    finished = status.name;
    byId("train-lora-name").textContent = `LoRA ${status.name} is ready`;
    byId("train-lora").hidden = false;
  }
}

function onEvent(ev: JobEvent): void {
  if (ev.kind !== "train") return;
  const row = document.querySelector<HTMLElement>(`.train-job[data-job="${ev.id}"]`);
  if (row) updateJobRow(row, ev);
  if (current === null && runs.size === 0) current = ev.id;
  if (ev.id !== current) return;
  if (ev.progress?.stage === "train" || ev.state !== "running") void refresh(ev.id);
  if (ev.state === "failed" || ev.state === "cancelled" || ev.state === "succeeded") {
    setState("train-state", `training job ${ev.id.slice(0, 8)} ${ev.state}${ev.error ? `: ${ev.error}` : ""}`, ev.state === "failed");
  }
}

export function initTrain(): void {
  byId("train-form").addEventListener("submit", (ev) => void start(ev));
  byId("train-use").addEventListener("click", () => {
    if (finished) document.dispatchEvent(new CustomEvent("mintframe:use-lora", { detail: finished }));
  });
  onJobEvent(onEvent);
}
