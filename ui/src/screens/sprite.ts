// The Library's Sprite tools: pixel art in a palette (one palette for the job) and keyed
// cut-outs for the selected asset, each a job whose row follows its events; the new asset
// appears in the grid when the job ends.
import { commands, type BuiltinPalette, type Dither, type JobEvent_Serialize as JobEvent, type PostStep } from "../bindings";
import { byId, describe, setState } from "../dom";
import { catchUp, onJobEvent } from "../jobs";
import { jobRow, updateJobRow } from "../components/jobrow";
import { submittedEvent } from "../logic";

let selected: string | null = null;
/** Each submitted job's source, for the before/after view when it ends. */
const sourceOf = new Map<string, string>();

/** The asset the tools work on (the Library's selection). */
export function selectForSprite(id: string | null): void {
  selected = id;
  byId("sprite-tools").hidden = id === null;
}

function hex(value: string): [number, number, number] {
  const v = parseInt(value.replace("#", ""), 16);
  return [(v >> 16) & 255, (v >> 8) & 255, v & 255];
}

async function pixelSteps(): Promise<PostStep[] | string> {
  const choice = byId<HTMLSelectElement>("px-palette").value;
  const cellText = byId<HTMLInputElement>("px-cell").value;
  const cell = cellText === "" ? null : Number(cellText);
  if (cell !== null && !(Number.isInteger(cell) && cell >= 1)) return "the cell size is a whole number ≥ 1";
  const dither = byId<HTMLSelectElement>("px-dither").value as Dither;
  let palette: [number, number, number][] = [];
  let colors = 0;
  if (choice === "best") {
    colors = Number(byId<HTMLInputElement>("px-colors").value);
    if (!(Number.isInteger(colors) && colors >= 1 && colors <= 256)) return "N is 1 to 256 colours";
  } else {
    const p = await commands.builtinPalette(choice as BuiltinPalette);
    if (p.status === "error") return describe(p.error);
    palette = p.data;
  }
  const steps: PostStep[] = [{ step: "binary_alpha", threshold: 128 }];
  if (cell !== 1) steps.push({ step: "pixelate", cell, method: "majority" });
  steps.push({ step: "quantize", palette, colors, dither }, { step: "clean_orphans" });
  if (byId<HTMLInputElement>("px-outline-on").checked) {
    const [r, g, b] = hex(byId<HTMLInputElement>("px-outline").value);
    steps.push({ step: "outline", color: [r, g, b, 255], inner: false });
  }
  return steps;
}

function cutSteps(): PostStep[] {
  const first: PostStep =
    byId<HTMLSelectElement>("cut-method").value === "u2netp"
      ? { step: "matte", model: "u2netp", sha256: "" }
      : { step: "key", color: hex(byId<HTMLInputElement>("cut-key").value), tolerance: 0.1, softness: 0.5 };
  return [first, { step: "alpha_bleed" }];
}

/** The source and the result side by side: what the step did, at a glance. */
async function compare(before: string, after: string): Promise<void> {
  const [a, b] = await Promise.all([commands.assetImage(before), commands.assetImage(after)]);
  if (a.status !== "ok" || b.status !== "ok" || a.data === null || b.data === null) return;
  byId<HTMLImageElement>("sprite-before").src = a.data;
  const img = byId<HTMLImageElement>("sprite-after");
  img.src = b.data;
  img.dataset.asset = after;
  byId("sprite-compare").hidden = false;
}

async function run(steps: PostStep[] | string): Promise<void> {
  if (selected === null) return;
  if (typeof steps === "string") {
    setState("sprite-state", steps, true);
    return;
  }
  const result = await commands.processAssets([selected], steps);
  if (result.status === "error") {
    setState("sprite-state", describe(result.error), true);
    return;
  }
  setState("sprite-state", "");
  sourceOf.set(result.data.id, selected);
  byId("sprite-jobs").prepend(jobRow(submittedEvent(result.data), "sprite-job"));
  catchUp(result.data.id, onEvent);
}

function onEvent(ev: JobEvent): void {
  const row = document.querySelector<HTMLElement>(`.sprite-job[data-job="${ev.id}"]`);
  if (row) updateJobRow(row, ev);
  const source = sourceOf.get(ev.id);
  if (source && ev.state === "succeeded" && ev.outputs.length > 0) void compare(source, ev.outputs[0]);
}

export function initSprite(): void {
  byId("px-run").addEventListener("click", () => void pixelSteps().then(run));
  byId("cut-run").addEventListener("click", () => void run(cutSteps()));
  onJobEvent(onEvent);
}
