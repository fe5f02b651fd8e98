// The Clip screen: a prompt to an AnimateDiff clip (frames, rate, windows, loop, formats), its
// job row, then the clip playing with its loop score; and the shot-list editor — shots as rows
// (prompt, duration, transition, camera move, motion, dialogue), the same list as TOML both
// ways — rendered to one cinematic. Both open in the native preview window.
import {
  commands,
  type ClipFormat,
  type ClipSpec,
  type JobEvent_Serialize as JobEvent,
  type JobRecord,
  type Shot_Deserialize as Shot,
  type ShotList_Deserialize as ShotList,
  type SubtitleMode,
  type Transition,
} from "../bindings";
import { byId, describe, el, setState } from "../dom";
import { catchUp, onJobEvent } from "../jobs";
import { jobRow, updateJobRow } from "../components/jobrow";
import { parseKeys, submittedEvent } from "../logic";

const FORMATS: ClipFormat[] = ["mp4", "webm", "gif", "apng", "webp"];
const TRANSITIONS: Transition[] = ["cut", "fade", "dissolve", "wipe-left", "wipe-right"];
/** The jobs this screen started: a clip (its loop score is shown) or a cinematic. */
const mine = new Map<string, "clip" | "shots" | "interpolate">();
let shown: string | null = null;

let shots: Shot[] = [
  {
    prompt: "a village forge at night, glowing embers",
    duration: 2,
    transition: "fade",
    transition_duration: 0.5,
    camera: { zoom: 1.3, pan: [0.05, 0], rotate: 0, easing: "ease-in-out", strength: 0 },
  },
  {
    prompt: "a burly blacksmith, portrait",
    duration: 2,
    transition: "dissolve",
    transition_duration: 0.5,
    speaker: "Smith",
    line: "Mornin', traveller. Need a blade?",
    camera: { zoom: 1.15, pan: [0, 0], rotate: 2, easing: "ease-in-out", strength: 0 },
  },
  {
    prompt: "a sword resting on an anvil, sparks",
    duration: 1.5,
    transition: "wipe-left",
    transition_duration: 0.4,
    camera: { zoom: 1, pan: [-0.1, 0], rotate: 0, easing: "linear", strength: 0 },
  },
];

function num(id: string): number | null {
  const v = byId<HTMLInputElement>(id).value.trim();
  return v === "" ? null : Number(v);
}

function clipSpec(): ClipSpec {
  return {
    prompt: byId<HTMLInputElement>("clip-prompt").value,
    model: byId<HTMLSelectElement>("clip-model").value,
    frames: num("clip-frames") ?? 16,
    fps: num("clip-fps") ?? 8,
    context: num("clip-context") ?? 16,
    overlap: num("clip-overlap") ?? 4,
    looped: byId<HTMLInputElement>("clip-loop").checked,
    walk: byId<HTMLInputElement>("clip-walk").checked,
    keyframes: parseKeys(byId<HTMLTextAreaElement>("clip-keys").value),
    width: num("clip-width"),
    height: num("clip-height"),
    steps: num("clip-steps"),
    seed: num("clip-seed"),
    formats: FORMATS.filter((f) => byId<HTMLInputElement>(`clip-format-${f}`).checked),
  };
}

function shotList(): ShotList {
  return {
    name: byId<HTMLInputElement>("shots-name").value.trim() || null,
    model: byId<HTMLSelectElement>("clip-model").value,
    fps: num("shots-fps") ?? 12,
    width: num("shots-width"),
    height: num("shots-height"),
    subtitles: byId<HTMLSelectElement>("shots-subtitles").value as SubtitleMode,
    shot: shots,
  };
}

/** One editable cell of a shot's row: a text or number input bound to `get`/`set`. */
function cell(
  label: string,
  type: "text" | "number",
  value: string,
  set: (v: string) => void,
): HTMLTableCellElement {
  const input = el("input", { type, "aria-label": label, title: label, placeholder: label });
  // Any value: the list is checked when it is submitted, with a message naming the shot.
  if (type === "number") input.step = "any";
  input.value = value;
  input.addEventListener("input", () => set(input.value));
  const td = el("td");
  td.append(input);
  return td;
}

function drawShots(): void {
  const rows = shots.map((s, i) => {
    const cam = (s.camera ??= { zoom: 1, pan: [0, 0], rotate: 0, easing: "ease-in-out", strength: 0 });
    const tr = el("tr", { class: "shot-row", "data-shot": String(i) });
    const transition = el("select", { "aria-label": "transition" });
    transition.replaceChildren(...TRANSITIONS.map((t) => el("option", { value: t }, t)));
    transition.value = s.transition ?? "cut";
    transition.addEventListener("change", () => (s.transition = transition.value as Transition));
    const tCell = el("td");
    tCell.append(transition);
    const motion = el("input", { type: "checkbox", title: "AnimateDiff motion", "aria-label": "motion" });
    motion.checked = s.motion ?? false;
    motion.addEventListener("change", () => (s.motion = motion.checked));
    const mCell = el("td");
    mCell.append(motion);
    const up = el("button", { type: "button", title: "Move up" }, "↑");
    up.addEventListener("click", () => {
      if (i === 0) return;
      [shots[i - 1], shots[i]] = [shots[i]!, shots[i - 1]!];
      drawShots();
    });
    const remove = el("button", { type: "button", class: "remove-shot", title: "Remove" }, "✕");
    remove.addEventListener("click", () => {
      shots.splice(i, 1);
      drawShots();
    });
    const act = el("td");
    act.append(up, remove);
    const pan = cam.pan ?? [0, 0];
    tr.append(
      cell("prompt", "text", s.prompt, (v) => (s.prompt = v)),
      cell("seconds", "number", String(s.duration ?? 1), (v) => (s.duration = Number(v))),
      tCell,
      cell("transition seconds", "number", String(s.transition_duration ?? 0.5), (v) => (s.transition_duration = Number(v))),
      cell("zoom", "number", String(cam.zoom ?? 1), (v) => (cam.zoom = Number(v))),
      cell("pan x", "number", String(pan[0] ?? 0), (v) => (cam.pan = [Number(v), cam.pan?.[1] ?? 0])),
      cell("pan y", "number", String(pan[1] ?? 0), (v) => (cam.pan = [cam.pan?.[0] ?? 0, Number(v)])),
      cell("rotate °", "number", String(cam.rotate ?? 0), (v) => (cam.rotate = Number(v))),
      cell("repaint strength", "number", String(cam.strength ?? 0), (v) => (cam.strength = Number(v))),
      mCell,
      cell("speaker", "text", s.speaker ?? "", (v) => (s.speaker = v.trim() === "" ? null : v)),
      cell("line", "text", s.line ?? "", (v) => (s.line = v.trim() === "" ? null : v)),
      act,
    );
    return tr;
  });
  const head = el("tr");
  head.append(
    ...["Prompt", "s", "Transition", "t s", "Zoom", "Pan x", "Pan y", "Rotate", "Repaint", "Motion", "Speaker", "Line", ""].map(
      (h) => el("th", {}, h),
    ),
  );
  byId("shots-table").replaceChildren(head, ...rows);
}

function addJob(r: JobRecord, kind: "clip" | "shots" | "interpolate"): void {
  mine.set(r.id, kind);
  byId("clip-jobs").prepend(jobRow(submittedEvent(r), "clip-job"));
  catchUp(r.id, onEvent);
}

function onEvent(ev: JobEvent): void {
  const kind = mine.get(ev.id);
  if (kind === undefined) return;
  const row = document.querySelector<HTMLElement>(`.clip-job[data-job="${ev.id}"]`);
  if (row) updateJobRow(row, ev);
  if (ev.state === "succeeded" && ev.outputs.length > 0) void showResult(ev.outputs[0]!, kind);
}

async function showResult(id: string, kind: "clip" | "shots" | "interpolate"): Promise<void> {
  shown = id;
  const [thumb, score] = await Promise.all([
    commands.assetThumbnail(id),
    kind === "clip" ? commands.clipLoopScore(id) : Promise.resolve(null),
  ]);
  if (thumb.status === "ok") byId<HTMLImageElement>("clip-thumb").src = thumb.data;
  byId("clip-loop-score").textContent =
    score?.status === "ok"
      ? `loop score ${(score.data.score ?? 0).toFixed(2)} (seam ${(score.data.seam ?? 0).toFixed(3)}, median step ${(score.data.step ?? 0).toFixed(3)})`
      : kind === "shots"
        ? "cinematic: the preview window plays it shot by shot"
        : kind === "interpolate"
          ? "in-between frames by RIFE"
          : "";
  byId("clip-result").hidden = false;
  byId("clip-result").dataset.asset = id;
}

export async function loadClip(): Promise<void> {
  const rife = await commands.rifeModels();
  if (rife.status === "ok") {
    byId<HTMLSelectElement>("clip-rife").replaceChildren(...rife.data.map((n) => el("option", { value: n }, n)));
    byId("clip-interpolate").toggleAttribute("disabled", rife.data.length === 0);
  }
  const sel = byId<HTMLSelectElement>("clip-model");
  if (sel.options.length > 0) return;
  const models = await commands.modelsList();
  if (models.status !== "ok") return setState("clip-state", describe(models.error), true);
  sel.replaceChildren(
    ...models.data
      .filter((m) => !m.addon)
      .map((m) => el("option", { value: m.id }, `${m.name}${m.installed ? "" : " (not installed)"}`)),
  );
  // The tiny model carries its own motion adapter: it makes clips on a fresh install.
  if (models.data.some((m) => m.id === "tiny-sd")) sel.value = "tiny-sd";
}

export function initClip(): void {
  byId("clip-formats").replaceChildren(
    ...FORMATS.map((f) => {
      const box = el("input", { type: "checkbox", id: `clip-format-${f}`, value: f });
      box.checked = f === "mp4" || f === "webm" || f === "gif";
      const label = el("label", { class: "check-label" });
      label.append(box, ` ${f}`);
      return label;
    }),
  );
  drawShots();
  byId("clip-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    void commands.clipStart(clipSpec()).then((r) => {
      if (r.status === "error") return setState("clip-state", describe(r.error), true);
      setState("clip-state", "");
      addJob(r.data, "clip");
    });
  });
  byId("shots-add").addEventListener("click", () => {
    shots.push({ prompt: "", duration: 2, transition: "cut", transition_duration: 0.5 });
    drawShots();
  });
  byId("shots-to-toml").addEventListener("click", () => {
    void commands.shotsToml(shotList()).then((r) => {
      if (r.status === "error") return setState("clip-state", describe(r.error), true);
      byId<HTMLTextAreaElement>("shots-toml").value = r.data;
    });
  });
  byId("shots-from-toml").addEventListener("click", () => {
    void commands.shotsParse(byId<HTMLTextAreaElement>("shots-toml").value).then((r) => {
      if (r.status === "error") return setState("clip-state", describe(r.error), true);
      setState("clip-state", "");
      shots = r.data.shot;
      byId<HTMLInputElement>("shots-name").value = r.data.name ?? "";
      byId<HTMLInputElement>("shots-fps").value = String(r.data.fps);
      byId<HTMLInputElement>("shots-width").value = r.data.width === null ? "" : String(r.data.width);
      byId<HTMLInputElement>("shots-height").value = r.data.height === null ? "" : String(r.data.height);
      byId<HTMLSelectElement>("shots-subtitles").value = r.data.subtitles;
      drawShots();
    });
  });
  byId("shots-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    void commands.shotsStart(shotList()).then((r) => {
      if (r.status === "error") return setState("clip-state", describe(r.error), true);
      setState("clip-state", "");
      addJob(r.data, "shots");
    });
  });
  byId("clip-interpolate").addEventListener("click", () => {
    if (shown === null) return;
    void commands
      .interpolateStart({
        source: shown,
        rife: byId<HTMLSelectElement>("clip-rife").value,
        factor: num("clip-factor") ?? 2,
        looped: byId<HTMLInputElement>("clip-loop").checked,
        formats: FORMATS.filter((f) => byId<HTMLInputElement>(`clip-format-${f}`).checked),
      })
      .then((r) => {
        if (r.status === "error") return setState("clip-state", describe(r.error), true);
        setState("clip-state", "");
        addJob(r.data, "interpolate");
      });
  });
  byId("clip-open-preview").addEventListener("click", () => {
    if (shown !== null) void commands.assetOpenPreview(shown, null);
  });
  onJobEvent(onEvent);
}
