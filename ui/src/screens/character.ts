// The Character screen: a prompt to a sprite pack (every facing of a view, every frame of the
// chosen cycles), the skeleton template under it — scrub its frames, drag a joint, save it for
// this studio's packs — the job's row, then the sheet, its consistency report, re-rolls of a
// frame or a row, and the native preview window.
import {
  commands,
  type AnimationKind,
  type CharacterSpec,
  type ConsistencyReport,
  type Facing,
  type JobEvent_Serialize as JobEvent,
  type Pose,
  type PoseTemplate,
  type View,
} from "../bindings";
import { byId, describe, el, setState } from "../dom";
import { catchUp, onJobEvent } from "../jobs";
import { jobRow, updateJobRow } from "../components/jobrow";
import { clampJoint, hitJoint, packFacings, POSE_COLORS, POSE_LIMBS, submittedEvent } from "../logic";

const ANIMATIONS: AnimationKind[] = ["idle", "walk", "run", "jump", "attack", "hurt", "death"];
/** Each submitted pack job's completed spec, to show the pack when it ends. */
const mine = new Map<string, CharacterSpec>();
let template: PoseTemplate | null = null;
let frame = 0;
let dragging: number | null = null;
let playing: number | null = null;
let pack: { id: string; facings: string[]; animations: AnimationKind[]; frames: number } | null = null;

function num(id: string): number {
  return Number(byId<HTMLInputElement>(id).value);
}

/** The facing being edited: its own frames, or (for a mirrored facing) none to edit. */
function editedFrames(): Pose["joints"][] | null {
  if (template === null) return null;
  const f = byId<HTMLSelectElement>("char-edit-facing").value;
  const facing = template.facings.find((x) => x.facing === f);
  if (!facing || facing.mirror_of) return null;
  return (facing.frames ?? []).map((p) => p.joints);
}

/** A joint's place on the canvas, or null where it is hidden. */
function placed(j: Pose["joints"][number] | undefined, w: number, h: number): [number, number] | null {
  if (!j || j[0] === null || j[1] === null) return null;
  return [j[0] * w, j[1] * h];
}

function draw(): void {
  const canvas = byId<HTMLCanvasElement>("char-skeleton");
  const ctx = canvas.getContext("2d");
  if (!ctx) return;
  ctx.fillStyle = "#000";
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  const frames = editedFrames();
  const label = byId("char-frame-label");
  if (frames === null) {
    label.textContent = "mirrored: edit the facing it mirrors";
    return;
  }
  const joints = frames[Math.min(frame, frames.length - 1)] ?? [];
  label.textContent = `${frame + 1} / ${frames.length}`;
  const [w, h] = [canvas.width, canvas.height];
  ctx.lineWidth = 6;
  ctx.lineCap = "round";
  POSE_LIMBS.forEach(([a, b], i) => {
    const p = placed(joints[a], w, h);
    const q = placed(joints[b], w, h);
    if (!p || !q) return;
    ctx.strokeStyle = POSE_COLORS[i] ?? "#fff";
    ctx.globalAlpha = 0.6;
    ctx.beginPath();
    ctx.moveTo(...p);
    ctx.lineTo(...q);
    ctx.stroke();
  });
  ctx.globalAlpha = 1;
  joints.forEach((j, i) => {
    const p = placed(j, w, h);
    if (!p) return;
    ctx.fillStyle = POSE_COLORS[i] ?? "#fff";
    ctx.beginPath();
    ctx.arc(...p, 4, 0, Math.PI * 2);
    ctx.fill();
  });
}

async function loadTemplate(): Promise<void> {
  const view = byId<HTMLSelectElement>("char-view").value as View;
  const animation = byId<HTMLSelectElement>("char-edit-anim").value as AnimationKind;
  const r = await commands.poseTemplate(view, animation);
  if (r.status === "error") return setState("char-template-state", describe(r.error), true);
  template = r.data;
  const sel = byId<HTMLSelectElement>("char-edit-facing");
  const keep = sel.value;
  sel.replaceChildren(
    ...template.facings.map((f) =>
      el("option", { value: f.facing }, f.mirror_of ? `${f.facing} (mirrors ${f.mirror_of})` : f.facing),
    ),
  );
  if (template.facings.some((f) => f.facing === keep)) sel.value = keep;
  const n = Math.max(...template.facings.map((f) => f.frames?.length ?? 0));
  const slider = byId<HTMLInputElement>("char-frame");
  slider.max = String(n - 1);
  frame = Math.min(frame, n - 1);
  slider.value = String(frame);
  setState("char-template-state", "");
  draw();
}

function pointer(ev: PointerEvent): [number, number] {
  const c = byId<HTMLCanvasElement>("char-skeleton");
  const r = c.getBoundingClientRect();
  return [(ev.clientX - r.left) / r.width, (ev.clientY - r.top) / r.height];
}

function spec(): CharacterSpec | string {
  const prompt = byId<HTMLInputElement>("char-prompt").value.trim();
  if (prompt === "") return "describe the character";
  const animations = ANIMATIONS.filter((a) => byId<HTMLInputElement>(`char-anim-${a}`).checked);
  if (animations.length === 0) return "pick at least one animation";
  const view = byId<HTMLSelectElement>("char-view").value as View;
  const seedText = byId<HTMLInputElement>("char-seed").value;
  const stepsText = byId<HTMLInputElement>("char-steps").value;
  const reference = byId<HTMLInputElement>("char-reference").value.trim();
  const attn = byId<HTMLSelectElement>("char-ref-attn").value;
  const chainText = byId<HTMLInputElement>("char-chain").value;
  return {
    prompt,
    negative_prompt: "",
    model: byId<HTMLSelectElement>("char-model").value,
    view,
    directions: view === "side" ? 2 : num("char-directions"),
    animations,
    frames: num("char-frames"),
    size: num("char-size"),
    gen_size: null,
    palette: null,
    colors: num("char-colors"),
    locked_palette: [],
    seed: seedText === "" ? null : Number(seedText),
    steps: stepsText === "" ? null : Number(stepsText),
    // LCM draws in 4 steps at guidance 1–2 with an LCM model or LCM-LoRA.
    guidance: byId<HTMLSelectElement>("char-sampler").value === "lcm" ? 1.5 : null,
    scheduler: byId<HTMLSelectElement>("char-sampler").value === "lcm" ? "lcm" : null,
    decoder: byId<HTMLSelectElement>("char-decoder").value === "tiny" ? "tiny" : null,
    strength: num("char-strength"),
    controlnet: null,
    control_weight: 1,
    templates: [],
    custom_templates: [],
    rerolls: [],
    reference: reference === "" ? null : reference,
    reference_sha256: null,
    reference_first_frame: false,
    reference_attention: attn === "" ? null : attn === "on",
    style_fidelity: num("char-fidelity"),
    chain_strength: chainText === "" ? null : Number(chainText),
    name: null,
    formats: [],
    dtype: null,
    device: null,
  };
}

function showReport(r: ConsistencyReport): void {
  const rows: [string, string][] = [
    ["palette distance between frames (mean / max)", `${r.palette_distance_mean} / ${r.palette_distance_max}`],
    ["palette distance between rows (max)", String(r.row_palette_distance_max)],
    ["silhouette overlap with the pose (mean / min)", `${r.silhouette_iou_mean} / ${r.silhouette_iou_min}`],
    ["anchor drift before / after registration", `${r.anchor_drift_before_px} px / ${r.anchor_drift_after_px} px`],
    ["empty frames", String(r.empty_frames)],
  ];
  byId("char-report").replaceChildren(
    ...rows.map(([k, v]) => {
      const tr = el("tr");
      tr.append(el("th", {}, k), el("td", {}, v));
      return tr;
    }),
  );
}

async function showPack(id: string, s: CharacterSpec): Promise<void> {
  const [img, report] = await Promise.all([commands.assetImage(id), commands.characterReport(id)]);
  if (img.status === "ok" && img.data !== null) byId<HTMLImageElement>("char-sheet").src = img.data;
  if (report.status === "ok") showReport(report.data);
  const facings = packFacings(s.view, s.directions);
  pack = {
    id,
    facings: typeof facings === "string" ? [] : facings,
    animations: s.animations,
    frames: s.frames ?? 8,
  };
  // A mirrored row is its source flipped: only drawn rows can be drawn again.
  const mirrored = new Set(
    report.status === "ok"
      ? report.data.rows.filter((r) => r.mirror_of !== null).map((r) => `${r.animation}:${r.facing}`)
      : [],
  );
  byId<HTMLSelectElement>("char-reroll-row").replaceChildren(
    ...pack.animations.flatMap((a) =>
      pack!.facings
        .filter((f) => !mirrored.has(`${a}:${f}`))
        .map((f) => el("option", { value: `${a}:${f}` }, `${a} ${f}`)),
    ),
  );
  byId<HTMLSelectElement>("char-reroll-frame").replaceChildren(
    el("option", { value: "" }, "the whole row"),
    ...Array.from({ length: pack.frames }, (_, i) => el("option", { value: String(i) }, String(i + 1))),
  );
  byId("char-result").hidden = false;
  byId("char-result").dataset.asset = id;
}

/** A pack job's row, with a button that opens its boards live in the native preview window. */
function packJobRow(job: Parameters<typeof submittedEvent>[0]): HTMLElement {
  const row = jobRow(submittedEvent(job), "char-job");
  const live = el("button", { class: "live-preview", type: "button" }, "Live preview");
  live.addEventListener("click", () => {
    void commands.characterOpenLivePreview(job.id).then((r) => {
      if (r.status === "error") return setState("char-state", describe(r.error), true);
      row.dataset.livePid = String(r.data);
    });
  });
  row.append(live);
  return row;
}

async function submit(s: CharacterSpec | string): Promise<void> {
  if (typeof s === "string") return setState("char-state", s, true);
  const r = await commands.characterStart(s);
  if (r.status === "error") return setState("char-state", describe(r.error), true);
  setState("char-state", "");
  if (r.data.spec.type === "character") mine.set(r.data.id, r.data.spec);
  byId("char-jobs").prepend(packJobRow(r.data));
  catchUp(r.data.id, onEvent);
}

function onEvent(ev: JobEvent): void {
  if (!mine.has(ev.id)) return;
  const row = document.querySelector<HTMLElement>(`.char-job[data-job="${ev.id}"]`);
  if (row) updateJobRow(row, ev);
  // A finished pack's "Live preview" opens the pack; one that failed or was cancelled has none.
  if (row && (ev.state === "failed" || ev.state === "cancelled")) row.querySelector(".live-preview")?.remove();
  const s = mine.get(ev.id);
  if (s && ev.state === "succeeded" && ev.outputs.length > 0) void showPack(ev.outputs[0]!, s);
}

export async function loadCharacter(): Promise<void> {
  const models = await commands.modelsList();
  const sel = byId<HTMLSelectElement>("char-model");
  if (models.status === "ok" && sel.options.length === 0) {
    sel.replaceChildren(
      ...models.data
        .filter((m) => !m.addon)
        .map((m) => el("option", { value: m.id }, `${m.name}${m.installed ? "" : " (not installed)"}`)),
    );
  }
  if (template === null) await loadTemplate();
}

export function initCharacter(): void {
  byId("char-animations").replaceChildren(
    ...ANIMATIONS.map((a) => {
      const box = el("input", { type: "checkbox", id: `char-anim-${a}`, value: a });
      box.checked = a === "walk";
      const label = el("label", { class: "check-label" });
      label.append(box, ` ${a}`);
      return label;
    }),
  );
  byId<HTMLSelectElement>("char-edit-anim").replaceChildren(
    ...ANIMATIONS.map((a) => el("option", { value: a }, a)),
  );
  byId<HTMLSelectElement>("char-edit-anim").value = "walk";
  for (const id of ["char-view", "char-edit-anim"]) {
    byId(id).addEventListener("change", () => void loadTemplate());
  }
  byId("char-edit-facing").addEventListener("change", draw);
  byId("char-frame").addEventListener("input", () => {
    frame = num("char-frame");
    draw();
  });
  byId("char-play").addEventListener("click", () => {
    if (playing !== null) {
      cancelAnimationFrame(playing);
      playing = null;
      byId("char-play").textContent = "Play";
      return;
    }
    byId("char-play").textContent = "Stop";
    // Frames advance at the template's fps, drawn on the display's own frames.
    let last = performance.now();
    const tick = (now: number): void => {
      if (now - last >= 1000 / (template?.fps ?? 8)) {
        last = now;
        const max = Number(byId<HTMLInputElement>("char-frame").max);
        frame = frame >= max ? 0 : frame + 1;
        byId<HTMLInputElement>("char-frame").value = String(frame);
        draw();
      }
      playing = requestAnimationFrame(tick);
    };
    playing = requestAnimationFrame(tick);
  });
  const canvas = byId<HTMLCanvasElement>("char-skeleton");
  canvas.addEventListener("pointerdown", (ev) => {
    const frames = editedFrames();
    if (frames === null) return;
    const [x, y] = pointer(ev);
    dragging = hitJoint(frames[frame] ?? [], x, y, 0.04);
    if (dragging !== null) canvas.setPointerCapture(ev.pointerId);
  });
  canvas.addEventListener("pointermove", (ev) => {
    const frames = editedFrames();
    if (dragging === null || frames === null) return;
    const [x, y] = pointer(ev);
    const joints = frames[frame];
    if (joints) joints[dragging] = clampJoint(x, y);
    draw();
  });
  canvas.addEventListener("pointerup", () => {
    dragging = null;
  });
  byId("char-save-template").addEventListener("click", () => {
    if (template === null) return;
    void commands.poseTemplateSave(template).then((r) =>
      r.status === "error"
        ? setState("char-template-state", describe(r.error), true)
        : setState("char-template-state", "saved: packs of this view use it"),
    );
  });
  byId("char-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    void submit(spec());
  });
  byId("char-reroll").addEventListener("click", () => {
    if (pack === null) return;
    const [animation, facing] = byId<HTMLSelectElement>("char-reroll-row").value.split(":");
    const f = byId<HTMLSelectElement>("char-reroll-frame").value;
    void commands
      .characterReroll(pack.id, [
        { animation: animation as AnimationKind, facing: facing as Facing, frame: f === "" ? null : Number(f), seed: 0 },
      ])
      .then((r) => {
        if (r.status === "error") return setState("char-state", describe(r.error), true);
        if (r.data.spec.type === "character") mine.set(r.data.id, r.data.spec);
        byId("char-jobs").prepend(packJobRow(r.data));
        catchUp(r.data.id, onEvent);
      });
  });
  byId("char-open-preview").addEventListener("click", () => {
    if (pack !== null) void commands.assetOpenPreview(pack.id, null);
  });
  onJobEvent(onEvent);
}
