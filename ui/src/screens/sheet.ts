// The Library's Sheet view: frames added from the library (in order, moved up and down), named
// animations or walk directions, layout, anchor, pivot and the exports to write; "Pack sheet"
// submits one job whose asset holds the PNG and every export.
import { commands, type AnimationSpec, type Anchor, type JobEvent_Serialize as JobEvent, type PlayDirection, type SheetFormat, type SheetLayout } from "../bindings";
import { jobRow, updateJobRow } from "../components/jobrow";
import { byId, describe, el, setState } from "../dom";
import { catchUp, onJobEvent } from "../jobs";
import { directionAnimations, moveItem, parsePivot, submittedEvent } from "../logic";

type Frame = { id: string; name: string; thumb: string | null };
let frames: Frame[] = [];
let selected: { id: string; name: string } | null = null;

/** The Library's selection, which "Add to sheet" adds. */
export function selectForSheet(a: { id: string; name: string } | null): void {
  selected = a;
  byId<HTMLButtonElement>("sheet-add").disabled = a === null;
}

function renderFrames(): void {
  byId("sheet-view").hidden = frames.length === 0;
  const list = byId("sheet-frames");
  list.replaceChildren(
    ...frames.map((f, i) => {
      const li = el("li", { class: "sheet-frame", "data-asset": f.id });
      const img = el("img", { alt: f.name });
      if (f.thumb) img.src = f.thumb;
      const button = (label: string, title: string, act: () => void) => {
        const b = el("button", { type: "button", title }, label);
        b.addEventListener("click", act);
        return b;
      };
      const controls = el("span");
      controls.append(
        button("↑", "earlier", () => move(i, -1)),
        button("↓", "later", () => move(i, 1)),
        button("✕", "remove", () => {
          frames.splice(i, 1);
          renderFrames();
        }),
      );
      li.append(img, el("span", {}, `${i}: ${f.name}`), controls);
      return li;
    }),
  );
}

function move(i: number, delta: number): void {
  frames = moveItem(frames, i, delta);
  renderFrames();
}

async function addSelected(): Promise<void> {
  if (selected === null) return;
  const t = await commands.assetThumbnail(selected.id);
  frames.push({ id: selected.id, name: selected.name, thumb: t.status === "ok" ? t.data : null });
  renderFrames();
}

function addAnimationRow(a?: AnimationSpec): void {
  const row = el("div", { class: "sheet-anim" });
  const dir = el("select", { class: "anim-direction" });
  for (const d of ["forward", "reverse", "pingpong"]) dir.append(el("option", { value: d }, d));
  row.append(
    el("input", { class: "anim-name", placeholder: "name", size: "10", value: a?.name ?? "" }),
    el("input", { class: "anim-from", type: "number", min: "0", placeholder: "from", value: String(a?.from ?? 0) }),
    el("input", { class: "anim-to", type: "number", min: "0", placeholder: "to", value: String(a?.to ?? 0) }),
    dir,
  );
  const loop = el("label", {}, " loop");
  loop.prepend(el("input", { class: "anim-loop", type: "checkbox", checked: "" }));
  row.append(loop);
  const remove = el("button", { type: "button" }, "✕");
  remove.addEventListener("click", () => row.remove());
  row.append(remove);
  byId("sheet-animations").append(row);
}

function animations(): AnimationSpec[] | string {
  const n = Number(byId<HTMLSelectElement>("sheet-directions").value);
  if (n > 0) return directionAnimations(n, frames.length);
  const out: AnimationSpec[] = [];
  for (const row of document.querySelectorAll<HTMLElement>("#sheet-animations .sheet-anim")) {
    const name = row.querySelector<HTMLInputElement>(".anim-name")?.value.trim() ?? "";
    if (name === "") return "every animation needs a name";
    out.push({
      name,
      from: Number(row.querySelector<HTMLInputElement>(".anim-from")?.value ?? 0),
      to: Number(row.querySelector<HTMLInputElement>(".anim-to")?.value ?? 0),
      direction: (row.querySelector<HTMLSelectElement>(".anim-direction")?.value ?? "forward") as PlayDirection,
      looped: row.querySelector<HTMLInputElement>(".anim-loop")?.checked ?? true,
    });
  }
  return out;
}

async function pack(): Promise<void> {
  const anims = animations();
  if (typeof anims === "string") return setState("sheet-state", anims, true);
  const pivot = parsePivot(byId<HTMLInputElement>("sheet-pivot").value);
  if (typeof pivot === "string") return setState("sheet-state", pivot, true);
  const formats = [...document.querySelectorAll<HTMLInputElement>(".sheet-format:checked")].map(
    (c) => c.value as SheetFormat,
  );
  const name = byId<HTMLInputElement>("sheet-name").value.trim();
  const result = await commands.packSheet({
    sources: frames.map((f) => f.id),
    name: name === "" ? null : name,
    layout: byId<HTMLSelectElement>("sheet-layout").value as SheetLayout,
    columns: null,
    padding: Number(byId<HTMLInputElement>("sheet-padding").value || "0"),
    extrude: 0,
    anchor: byId<HTMLSelectElement>("sheet-anchor").value as Anchor,
    pivot,
    animations: anims,
    fps: Number(byId<HTMLInputElement>("sheet-fps").value || "10"),
    formats,
  });
  if (result.status === "error") return setState("sheet-state", describe(result.error), true);
  setState("sheet-state", "");
  byId("sheet-jobs").prepend(jobRow(submittedEvent(result.data), "sheet-job"));
  catchUp(result.data.id, onEvent);
}

function onEvent(ev: JobEvent): void {
  const row = document.querySelector<HTMLElement>(`.sheet-job[data-job="${ev.id}"]`);
  if (row) updateJobRow(row, ev);
}

async function exportSelected(): Promise<void> {
  if (selected === null) return;
  const r = await commands.assetExport(selected.id);
  const state = byId("asset-open-state");
  state.textContent = r.status === "ok" ? `exported to ${r.data}` : describe(r.error);
  state.classList.toggle("error", r.status !== "ok");
  state.dataset.exported = r.status === "ok" ? r.data : "";
}

export function initSheet(): void {
  byId("sheet-add").addEventListener("click", () => void addSelected());
  byId("sheet-anim-add").addEventListener("click", () => addAnimationRow());
  byId("sheet-pack").addEventListener("click", () => void pack());
  byId("sheet-clear").addEventListener("click", () => {
    frames = [];
    renderFrames();
  });
  byId("asset-export").addEventListener("click", () => void exportSelected());
  onJobEvent(onEvent);
}
