// The studio's logic that needs no window: formatting, parsing and the job reducer. Tested by
// Vitest (logic.test.ts).
import type {
  AnimationSpec,
  AssetSummary,
  ClipKeyframe_Deserialize,
  JobEvent_Deserialize,
  JobEvent_Serialize as JobEvent,
  JobRecord,
  JobState,
  PostStep,
  Progress,
} from "./bindings";

export function bytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB"];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${u === 0 ? v : v.toFixed(1)} ${units[u]}`;
}

/** "32x32" → [32, 32]; anything else → null (the whole image). */
export function frameSize(text: string): [number, number] | null {
  const m = /^\s*(\d+)\s*[xX×]\s*(\d+)\s*$/.exec(text);
  return m ? [Number(m[1]), Number(m[2])] : null;
}

export function progressText(p: Progress | null, eta: number | null = null): string {
  if (!p) return "";
  const left = eta === null ? "" : ` · ${duration(eta)} left`;
  return p.total > 0 ? `${p.stage} ${p.step}/${p.total}${left}` : p.stage;
}

export function duration(secs: number): string {
  if (secs < 60) return `${secs} s`;
  const m = Math.floor(secs / 60);
  return m < 60 ? `${m} min ${secs % 60} s` : `${Math.floor(m / 60)} h ${m % 60} min`;
}

export function isFinished(s: JobState): boolean {
  return s === "succeeded" || s === "failed" || s === "cancelled";
}

/** An event as the channel delivers it, with every field present. */
/** The event a just-submitted job stands for until the worker's own events arrive. */
export function submittedEvent(job: JobRecord): JobEvent {
  return {
    id: job.id,
    kind: job.spec.type,
    state: job.state,
    progress: null,
    eta_secs: null,
    preview: null,
    outputs: [],
    refused: [],
    error: null,
    error_kind: null,
  };
}

export function normalizeEvent(raw: JobEvent_Deserialize): JobEvent {
  return {
    ...raw,
    progress: raw.progress ?? null,
    eta_secs: raw.eta_secs ?? null,
    preview: raw.preview ?? null,
    error: raw.error ?? null,
    error_kind: raw.error_kind ?? null,
  };
}

/** The latest word on each job: events in, one entry per job out. Progress may arrive after a
 * job ended (a late event from another thread): an ended job stays ended. */
export function applyEvent(jobs: Map<string, JobEvent>, ev: JobEvent): Map<string, JobEvent> {
  const prev = jobs.get(ev.id);
  if (prev && isFinished(prev.state) && !isFinished(ev.state)) return jobs;
  const next: JobEvent = {
    ...ev,
    progress: ev.progress ?? prev?.progress ?? null,
    outputs: ev.outputs.length > 0 ? ev.outputs : (prev?.outputs ?? []),
  };
  jobs.set(ev.id, next);
  return jobs;
}

/** The fraction a progress bar shows, 0 to 1. */
export function fraction(ev: JobEvent): number {
  if (ev.state === "succeeded") return 1;
  const p = ev.progress;
  return p && p.total > 0 ? Math.min(1, p.step / p.total) : 0;
}

/** Library search: every word must appear in the name, kind, prompt or model. */
export function matches(a: AssetSummary, query: string): boolean {
  const hay = [a.name, a.kind, a.prompt ?? "", a.model ?? ""].join(" ").toLowerCase();
  return query
    .toLowerCase()
    .split(/\s+/)
    .filter((w) => w !== "")
    .every((w) => hay.includes(w));
}

/** The walk directions in the order RPG sheets put their rows (as the CLI's `--directions`). */
export const DIRECTIONS = ["down", "left", "right", "up", "down_left", "down_right", "up_left", "up_right"];

/** `n` looping animations splitting `frames` evenly, or a reason they cannot. */
export function directionAnimations(n: number, frames: number, prefix = "walk"): AnimationSpec[] | string {
  if (![1, 2, 4, 8].includes(n)) return "directions are 1, 2, 4 or 8";
  if (frames === 0 || frames % n !== 0) return `${frames} frames do not split into ${n} directions`;
  const per = frames / n;
  return Array.from({ length: n }, (_, d) => ({
    name: prefix ? `${prefix}_${DIRECTIONS[d]}` : DIRECTIONS[d],
    from: d * per,
    to: d * per + per - 1,
    direction: "forward" as const,
    looped: true,
  }));
}

/** A copy of `list` with item `i` moved by `delta` places (clamped at the ends). */
export function moveItem<T>(list: readonly T[], i: number, delta: number): T[] {
  const out = [...list];
  const j = Math.min(Math.max(i + delta, 0), out.length - 1);
  if (i < 0 || i >= out.length || i === j) return out;
  const [item] = out.splice(i, 1);
  out.splice(j, 0, item);
  return out;
}

/** "16,31" → [16, 31]; empty → null (the anchor's pivot); anything else → a reason. */
export function parsePivot(text: string): [number, number] | null | string {
  if (text.trim() === "") return null;
  const m = /^\s*(\d+)\s*,\s*(\d+)\s*$/.exec(text);
  return m ? [Number(m[1]), Number(m[2])] : "a pivot is X,Y in pixels, e.g. 16,31";
}

/** What a sprite gets after generation: the background out, the pixel grid undone to
 *  `pixels` a side, one palette, lone pixels cleaned, edge colour bled under the clear. */
export function spriteSteps(opts: {
  width: number;
  pixels: number;
  palette: [number, number, number][];
  cutout: "u2netp" | "key" | "none";
  key: [number, number, number];
}): PostStep[] | string {
  const { width, pixels } = opts;
  if (!(Number.isInteger(pixels) && pixels > 0) || width % pixels !== 0) {
    return `a ${width}-pixel image does not undo to ${pixels} pixels: make the width a multiple of it`;
  }
  const steps: PostStep[] = [];
  if (opts.cutout === "u2netp") steps.push({ step: "matte", model: "u2netp", sha256: "" });
  if (opts.cutout === "key") steps.push({ step: "key", color: opts.key, tolerance: 0.1, softness: 0.5 });
  steps.push({ step: "binary_alpha", threshold: 128 });
  const cell = width / pixels;
  if (cell > 1) steps.push({ step: "pixelate", cell, method: "majority" });
  steps.push({ step: "quantize", palette: opts.palette, colors: 0, dither: "none" }, { step: "clean_orphans" }, { step: "alpha_bleed" });
  return steps;
}

/** A training run's loss as an SVG-style polyline inside `width`×`height` (y grows down), with
 *  the range it spans; the loss axis starts at the smallest value seen so a falling curve
 *  uses the whole height. Fewer than two points draw nothing. */
export function lossPolyline(
  points: { step: number; loss: number | null }[],
  width: number,
  height: number,
): { path: [number, number][]; min: number; max: number } | null {
  // Rust's f64 arrives as `number | null` (NaN is serialised as null).
  const finite = points.flatMap((p) =>
    p.loss !== null && Number.isFinite(p.loss) ? [{ step: p.step, loss: p.loss }] : [],
  );
  if (finite.length < 2) return null;
  const steps = finite.map((p) => p.step);
  const losses = finite.map((p) => p.loss);
  const [s0, s1] = [Math.min(...steps), Math.max(...steps)];
  const [min, max] = [Math.min(...losses), Math.max(...losses)];
  const span = max - min || 1;
  const path = finite.map((p): [number, number] => [
    s1 === s0 ? 0 : ((p.step - s0) / (s1 - s0)) * width,
    height - ((p.loss - min) / span) * height,
  ]);
  return { path, min, max };
}

/** OpenPose's limbs (0-based joint pairs) and its 18 colours, as the annotator draws them. */
export const POSE_LIMBS: readonly [number, number][] = [
  [1, 2], [1, 5], [2, 3], [3, 4], [5, 6], [6, 7], [1, 8], [8, 9], [9, 10],
  [1, 11], [11, 12], [12, 13], [1, 0], [0, 14], [14, 16], [0, 15], [15, 17],
];
export const POSE_COLORS: readonly string[] = [
  "#ff0000", "#ff5500", "#ffaa00", "#ffff00", "#aaff00", "#55ff00", "#00ff00", "#00ff55", "#00ffaa",
  "#00ffff", "#00aaff", "#0055ff", "#0000ff", "#5500ff", "#aa00ff", "#ff00ff", "#ff00aa", "#ff0055",
];

/** The joint under a point (fractions of the frame) within `radius`, nearest first; null if none. */
export function hitJoint(
  joints: readonly ([number | null, number | null] | null)[],
  x: number,
  y: number,
  radius: number,
): number | null {
  let best: number | null = null;
  let bestD = radius * radius;
  joints.forEach((j, i) => {
    if (j === null || j[0] === null || j[1] === null) return;
    const d = (j[0] - x) ** 2 + (j[1] - y) ** 2;
    if (d <= bestD) {
      bestD = d;
      best = i;
    }
  });
  return best;
}

/** A dragged joint stays in the frame: joints are fractions from 0 to 1. */
export function clampJoint(x: number, y: number): [number, number] {
  const c = (v: number) => Math.round(Math.min(1, Math.max(0, v)) * 10000) / 10000;
  return [c(x), c(y)];
}

/** The facings a pack draws, in its rows' order (as the engine's `Facing::for_view`). */
export function packFacings(view: string, directions: number): string[] | string {
  if (view === "side") return ["e", "w"];
  if (directions === 4) return view === "iso" ? ["se", "sw", "ne", "nw"] : ["s", "w", "e", "n"];
  if (directions === 8) return ["s", "w", "e", "n", "sw", "se", "nw", "ne"];
  return `${directions} directions: use 4 or 8`;
}

/** `FRAME: prompt [@SEED]` lines as keyframes; lines that are not are left out. */
export function parseKeys(text: string): ClipKeyframe_Deserialize[] {
  return text
    .split("\n")
    .map((line) => /^\s*(\d+)\s*:\s*(.+?)\s*(?:@(\d+))?\s*$/.exec(line))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ frame: Number(m[1]), prompt: m[2]!, seed: m[3] === undefined ? null : Number(m[3]) }));
}

