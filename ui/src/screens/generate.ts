// Generate: a prompt and the model's settings in, a job row that follows the job's events, the
// images shown when it succeeds. A second Generate while one runs is queued by the worker.
// Modes: Image as generated; Sprite cuts out and undoes the pixel grid in one palette after
// generating; Tile wraps (both axes or one); Sheet generates directions × frames, makes them
// sprites and packs the sheet with every export: each step a job of its own, chained here.
import {
  commands,
  type BuiltinPalette,
  type GenerateSpec,
  type JobEvent_Serialize as JobEvent,
  type ModelInfo,
  type PostStep,
  type Scheduler,
  type SeamlessAxes,
} from "../bindings";
import { jobRow, updateJobRow } from "../components/jobrow";
import { byId, describe, el, setState } from "../dom";
import { onJobEvent } from "../jobs";
import { directionAnimations, spriteSteps, submittedEvent } from "../logic";

type Mode = "image" | "sprite" | "tile" | "sheet";
/** What follows a job when it succeeds: post-processing of its images, then a sheet. */
type Next = { steps: PostStep[] | null; sheet: { directions: number; name: string } | null };
const next = new Map<string, Next>();
/** Jobs of a chain (process, sheet), shown on this screen like the generation itself. */
const chained = new Set<string>();
/** The last event of every job seen: a chained job can end before its submit call returns. */
const lastEvent = new Map<string, JobEvent>();

function adopt(id: string): void {
  chained.add(id);
  const seen = lastEvent.get(id);
  if (seen) onEvent(seen);
}

function mode(): Mode {
  return byId<HTMLSelectElement>("gen-mode").value as Mode;
}

function applyMode(): void {
  const m = mode();
  byId("gen-sprite-opts").hidden = m !== "sprite" && m !== "sheet";
  byId("gen-sheet-opts").hidden = m !== "sheet";
  byId("gen-wrap-label").hidden = m !== "tile";
  const seamless = byId<HTMLInputElement>("gen-seamless");
  if (m === "tile") seamless.checked = true;
  if (m === "sprite" || m === "sheet") seamless.checked = false;
  const batch = byId<HTMLInputElement>("gen-batch");
  batch.disabled = m === "sheet";
  if (m === "sheet") {
    batch.value = String(
      Number(byId<HTMLSelectElement>("gen-directions").value) * Number(byId<HTMLInputElement>("gen-frames").value || "1"),
    );
  }
}

function hex(value: string): [number, number, number] {
  const v = parseInt(value.replace("#", ""), 16);
  return [(v >> 16) & 255, (v >> 8) & 255, v & 255];
}

/** Submits what follows a finished job of a chain. */
async function continueChain(ev: JobEvent): Promise<void> {
  const n = next.get(ev.id);
  if (!n || ev.state !== "succeeded") return;
  next.delete(ev.id);
  if (n.steps !== null) {
    const r = await commands.processAssets(ev.outputs, n.steps);
    if (r.status === "error") return setState("generate-state", describe(r.error), true);
    rowFor(submittedEvent(r.data));
    if (n.sheet) next.set(r.data.id, { steps: null, sheet: n.sheet });
    adopt(r.data.id);
    return;
  }
  if (n.sheet) {
    const anims = directionAnimations(n.sheet.directions, ev.outputs.length);
    if (typeof anims === "string") return setState("generate-state", anims, true);
    const r = await commands.packSheet({
      sources: ev.outputs,
      name: n.sheet.name || null,
      layout: "grid",
      columns: null,
      padding: 0,
      extrude: 0,
      anchor: "feet",
      pivot: null,
      animations: anims,
      fps: 8,
      formats: ["aseprite-json", "aseprite", "texturepacker", "phaser", "godot", "grid"],
    });
    if (r.status === "error") return setState("generate-state", describe(r.error), true);
    rowFor(submittedEvent(r.data));
    adopt(r.data.id);
  }
}

let models: ModelInfo[] = [];
let addons: ModelInfo[] = [];

/** The installed transparency add-ons for the chosen model's base. */
function applyAddons(): void {
  const m = models.find((x) => x.id === byId<HTMLSelectElement>("gen-model").value);
  const fitting = addons.filter((a) => m !== undefined && a.arch === m.arch);
  byId<HTMLSelectElement>("gen-transparent").replaceChildren(
    el("option", { value: "" }, "No"),
    ...fitting.map((a) => el("option", { value: a.id }, a.name)),
  );
}
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

/** The trained LoRAs (Train screen), offered by name: the window never names a file. */
async function loadLoras(): Promise<void> {
  const r = await commands.lorasList();
  if (r.status !== "ok") return;
  const sel = byId<HTMLSelectElement>("gen-lora");
  const keep = sel.value;
  sel.replaceChildren(el("option", { value: "" }, "None"), ...r.data.map((n) => el("option", { value: n }, n)));
  sel.value = r.data.includes(keep) ? keep : "";
}

/** Picks a freshly trained LoRA (the Train screen's "Use this LoRA"). */
export async function useLora(name: string): Promise<void> {
  await loadLoras();
  byId<HTMLSelectElement>("gen-lora").value = name;
}

export async function loadGenerate(): Promise<void> {
  await loadLoras();
  if (models.length > 0) return;
  const result = await commands.modelsList();
  if (result.status === "error") {
    setState("generate-state", describe(result.error), true);
    return;
  }
  // Add-ons (LayerDiffuse transparency) are not models to generate with: they are offered
  // as the Transparent choice for models of their base.
  models = result.data.filter((m) => !m.addon);
  addons = result.data.filter((m) => m.addon && m.installed);
  byId<HTMLSelectElement>("gen-model").replaceChildren(
    ...models.map((m) =>
      el("option", { value: m.id }, `${m.name}${m.installed ? "" : " (not installed)"}`),
    ),
  );
  applyModelDefaults();
  applyAddons();
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
  // Every generation shows here, also one the worker resumed after a restart; and the jobs
  // a Sprite or Sheet generation chained.
  lastEvent.set(ev.id, ev);
  if (ev.kind !== "generate" && !chained.has(ev.id)) return;
  updateJobRow(rowFor(ev), ev);
  if (ev.state === "succeeded") {
    // A chain shows its last step's assets; a plain generation its images.
    if (!next.has(ev.id)) void showResults(ev.outputs);
    void continueChain(ev);
  }
  if (ev.state === "succeeded" || ev.state === "failed" || ev.state === "cancelled") {
    setState("generate-state", `job ${ev.id.slice(0, 8)} ${ev.state}`, ev.state === "failed");
  }
}

async function runGenerate(ev: Event): Promise<void> {
  ev.preventDefault();
  const m = mode();
  let after: Next | null = null;
  if (m === "sprite" || m === "sheet") {
    const pal = await commands.builtinPalette(byId<HTMLSelectElement>("gen-palette").value as BuiltinPalette);
    if (pal.status === "error") return setState("generate-state", describe(pal.error), true);
    const steps = spriteSteps({
      width: numberOrNull("gen-width") ?? 0,
      pixels: Number(byId<HTMLInputElement>("gen-pixels").value),
      palette: pal.data,
      cutout: byId<HTMLSelectElement>("gen-cutout").value as "u2netp" | "key" | "none",
      key: hex(byId<HTMLInputElement>("gen-key").value),
    });
    if (typeof steps === "string") return setState("generate-state", steps, true);
    after = {
      steps,
      sheet:
        m === "sheet"
          ? {
              directions: Number(byId<HTMLSelectElement>("gen-directions").value),
              name: byId<HTMLInputElement>("gen-sheet-name").value.trim(),
            }
          : null,
    };
  }
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
    wrap: m === "tile" ? (byId<HTMLSelectElement>("gen-wrap").value as SeamlessAxes) : null,
    transparent:
      byId<HTMLSelectElement>("gen-transparent").value === ""
        ? null
        : {
            decoder: byId<HTMLSelectElement>("gen-transparent").value,
            augmented: byId<HTMLInputElement>("gen-transparent-aug").checked,
          },
    vae_tiling: false,
    dtype: byId<HTMLSelectElement>("gen-dtype").value === "bf16" ? "bf16" : null,
    device: null,
    loras:
      byId<HTMLSelectElement>("gen-lora").value === ""
        ? []
        : [{ path: byId<HTMLSelectElement>("gen-lora").value, strength: Number(byId<HTMLInputElement>("gen-lora-strength").value) }],
    memory_budget_mib: null,
    decoder: byId<HTMLSelectElement>("gen-decoder").value === "tiny" ? "tiny" : null,
  };
  const result = await commands.generate(spec);
  if (result.status === "error") {
    setState("generate-state", describe(result.error), true);
    return;
  }
  rowFor(submittedEvent(result.data));
  setState("generate-state", `job ${result.data.id.slice(0, 8)} queued`);
  if (after) {
    next.set(result.data.id, after);
    // A fast job may have ended while the submit call returned.
    const seen = lastEvent.get(result.data.id);
    if (seen) onEvent(seen);
  }
}

export function initGenerate(): void {
  byId("gen-model").addEventListener("change", applyModelDefaults);
  byId("gen-model").addEventListener("change", applyAddons);
  for (const id of ["gen-mode", "gen-directions", "gen-frames"]) byId(id).addEventListener("change", applyMode);
  byId("generate-form").addEventListener("submit", (ev) => void runGenerate(ev));
  onJobEvent(onEvent);
}
