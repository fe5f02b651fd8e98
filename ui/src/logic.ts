// The studio's logic that needs no window: formatting, parsing and the job reducer. Tested by
// Vitest (logic.test.ts).
import type {
  AnimationSpec,
  AssetSummary,
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
