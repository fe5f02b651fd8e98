// Generate: a prompt and the model's settings in, a job row that follows the job's events, the
// images shown when it succeeds. A second Generate while one runs is queued by the worker.
import { commands, type GenerateSpec, type JobEvent_Serialize as JobEvent, type ModelInfo, type Scheduler } from "../bindings";
import { jobRow, updateJobRow } from "../components/jobrow";
import { byId, describe, el, setState } from "../dom";
import { onJobEvent } from "../jobs";
import { submittedEvent } from "../logic";

let models: ModelInfo[] = [];
const shown = new Set<string>();

function numberOrNull(id: string): number | null {
  const v = byId<HTMLInputElement>(id).value.trim();
  return v === "" ? null : Number(v);
}

function applyModelDefaults(): void {
  const m = models.find((x) => x.id === byId<HTMLSelectElement>("gen-model").value);
  const lic = byId("gen-license");
  if (!m) {
    lic.textContent = "";
    return;
  }
  byId<HTMLInputElement>("gen-steps").value = String(m.default_steps);
  byId<HTMLInputElement>("gen-guidance").value = String(m.default_guidance);
  byId<HTMLInputElement>("gen-width").value = String(m.default_width);
  byId<HTMLInputElement>("gen-height").value = String(m.default_height);
  byId<HTMLSelectElement>("gen-scheduler").value = m.default_scheduler;
  lic.textContent = `Licence: ${m.license}. ${m.license_summary}${m.installed ? "" : ` Not installed: run \`mintframe models pull ${m.id}\`.`}`;
  lic.classList.toggle("nc", !m.commercial);
  lic.dataset.license = m.license;
}

export async function loadGenerate(): Promise<void> {
  if (models.length > 0) return;
  const result = await commands.modelsList();
  if (result.status === "error") {
    setState("generate-state", describe(result.error), true);
    return;
  }
  models = result.data;
  byId<HTMLSelectElement>("gen-model").replaceChildren(
    ...models.map((m) =>
      el("option", { value: m.id }, `${m.name}${m.installed ? "" : " (not installed)"}`),
    ),
  );
  applyModelDefaults();
  setState("generate-state", "");
}

async function showResults(outputs: string[]): Promise<void> {
  const box = byId("gen-results");
  for (const id of outputs) {
    if (shown.has(id)) continue;
    shown.add(id);
    const image = await commands.assetImage(id);
    const fig = el("figure", { "data-asset": id });
    if (image.status === "ok" && image.data !== null) {
      fig.append(el("img", { src: image.data, alt: id }));
    }
    fig.append(el("figcaption", {}, id));
    box.prepend(fig);
  }
}

function rowFor(ev: JobEvent): HTMLElement {
  const list = byId("gen-jobs");
  const existing = list.querySelector<HTMLElement>(`.gen-job[data-job="${ev.id}"]`);
  if (existing) return existing;
  const row = jobRow(ev);
  list.prepend(row);
  return row;
}

function onEvent(ev: JobEvent): void {
  // Every generation shows here, also one the worker resumed after a restart.
  if (ev.kind !== "generate") return;
  updateJobRow(rowFor(ev), ev);
  if (ev.state === "succeeded") void showResults(ev.outputs);
  if (ev.state === "succeeded" || ev.state === "failed" || ev.state === "cancelled") {
    setState("generate-state", `job ${ev.id.slice(0, 8)} ${ev.state}`, ev.state === "failed");
  }
}

async function runGenerate(ev: Event): Promise<void> {
  ev.preventDefault();
  const spec: GenerateSpec = {
    model: byId<HTMLSelectElement>("gen-model").value,
    prompt: byId<HTMLTextAreaElement>("gen-prompt").value,
    negative_prompt: byId<HTMLTextAreaElement>("gen-negative").value,
    seed: numberOrNull("gen-seed"),
    steps: numberOrNull("gen-steps"),
    guidance: numberOrNull("gen-guidance"),
    width: numberOrNull("gen-width"),
    height: numberOrNull("gen-height"),
    scheduler: byId<HTMLSelectElement>("gen-scheduler").value as Scheduler,
    batch: numberOrNull("gen-batch"),
    strength: null,
    init_image: null,
    mask: null,
    seamless: byId<HTMLInputElement>("gen-seamless").checked,
    vae_tiling: false,
    dtype: null,
    device: null,
    loras: [],
    memory_budget_mib: null,
  };
  const result = await commands.generate(spec);
  if (result.status === "error") {
    setState("generate-state", describe(result.error), true);
    return;
  }
  rowFor(submittedEvent(result.data));
  setState("generate-state", `job ${result.data.id.slice(0, 8)} queued`);
}

export function initGenerate(): void {
  byId("gen-model").addEventListener("change", applyModelDefaults);
  byId("generate-form").addEventListener("submit", (ev) => void runGenerate(ev));
  onJobEvent(onEvent);
}
