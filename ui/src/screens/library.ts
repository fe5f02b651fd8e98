// Library: a thumbnail grid (animated for anything that moves) with search by prompt, kind and
// model; the selected asset's headless preview, its details and "Open preview".
import { commands, type AssetSummary } from "../bindings";
import { byId, describe, el, setState } from "../dom";
import { onJobEvent } from "../jobs";
import { bytes, frameSize, matches } from "../logic";
import { initSheet, selectForSheet } from "./sheet";
import { initSprite, selectForSprite } from "./sprite";

let assets: AssetSummary[] = [];
let previewAsset: string | null = null;
const thumbs = new Map<string, string>();

async function renderPreview(): Promise<void> {
  const box = byId("asset-preview-box");
  const img = byId<HTMLImageElement>("asset-preview");
  if (previewAsset === null) return;
  const spec = {
    zoom: Number(byId<HTMLSelectElement>("preview-zoom").value),
    tile: byId<HTMLInputElement>("preview-tile").checked,
    linear: byId<HTMLInputElement>("preview-linear").checked,
    grid: byId<HTMLInputElement>("preview-grid").checked,
    backdrop: byId<HTMLSelectElement>("preview-backdrop").value,
    frame_size: frameSize(byId<HTMLInputElement>("preview-frame").value),
    frame_index: Number(byId<HTMLInputElement>("preview-index").value || "0"),
    onion: byId<HTMLInputElement>("preview-onion").checked,
  };
  const animate = byId<HTMLInputElement>("preview-animate").checked && spec.frame_size !== null;
  const fps = Number(byId<HTMLInputElement>("preview-fps").value || "12");
  const result = animate
    ? await commands.assetAnimation(previewAsset, spec, fps)
    : await commands.assetPreview(previewAsset, spec);
  if (result.status === "ok") {
    box.hidden = false;
    img.src = result.data;
    img.dataset.spec = JSON.stringify(spec);
  } else {
    // Not a still (a clip, a GIF): nothing to preview headless; say why.
    box.hidden = true;
    setState("library-state", describe(result.error), result.error.kind !== "media");
    img.removeAttribute("src");
    img.dataset.error = describe(result.error);
  }
}

async function openPreview(): Promise<void> {
  if (previewAsset === null) return;
  const state = byId("asset-open-state");
  const result = await commands.assetOpenPreview(
    previewAsset,
    frameSize(byId<HTMLInputElement>("preview-frame").value),
  );
  state.textContent =
    result.status === "ok" ? `preview window open (process ${result.data})` : describe(result.error);
  state.classList.toggle("error", result.status !== "ok");
  state.dataset.pid = result.status === "ok" ? String(result.data) : "";
}

async function showAsset(a: AssetSummary): Promise<void> {
  previewAsset = a.id;
  selectForSprite(a.damaged ? null : a.id);
  selectForSheet(a.damaged ? null : { id: a.id, name: a.name });
  for (const t of document.querySelectorAll(".tile.selected")) t.classList.remove("selected");
  document.querySelector(`.tile[data-asset="${a.id}"]`)?.classList.add("selected");
  byId("asset-actions").hidden = false;
  byId("asset-open-state").textContent = "";
  void renderPreview();
  const pre = byId<HTMLPreElement>("asset-detail");
  const img = byId<HTMLImageElement>("asset-image");
  const result = await commands.assetDetail(a.id);
  pre.hidden = false;
  pre.textContent =
    result.status === "ok" ? JSON.stringify(result.data, null, 2) : describe(result.error);
  const image = await commands.assetImage(a.id);
  img.hidden = image.status !== "ok" || image.data === null;
  if (image.status === "ok" && image.data !== null) img.src = image.data;
}

/** Marks a tile damaged: a file that does not decode is shown as such, with the reason, and
 *  never stops the grid (or the studio) from working. */
function markDamaged(fig: Element, reason: string): void {
  fig.classList.add("damaged");
  fig.setAttribute("title", reason);
  const note = fig.querySelector(".damage") ?? el("p", { class: "damage" });
  note.textContent = `damaged: ${reason}`;
  fig.append(note);
}

function tile(a: AssetSummary): HTMLElement {
  const fig = el("figure", { class: "tile", "data-asset": a.id, title: a.prompt ?? a.name });
  const img = el("img", { class: "thumb", alt: "" });
  const cached = thumbs.get(a.id);
  if (cached) img.src = cached;
  fig.append(img, el("figcaption", {}, `${a.name} · ${a.kind} · ${bytes(a.size_bytes)}`));
  if (a.damaged) markDamaged(fig, a.damaged);
  fig.addEventListener("click", () => void showAsset(a));
  return fig;
}

function renderGrid(): void {
  const grid = byId("library-grid");
  const query = byId<HTMLInputElement>("library-search").value;
  const shown = assets.filter((a) => matches(a, query));
  if (assets.length === 0) {
    grid.replaceChildren(
      el("p", { class: "empty" }, "The library is empty. Generate something, or import files with `mintframe library import FILE…`."),
    );
  } else {
    grid.replaceChildren(...shown.map(tile));
  }
  setState("library-state", `${shown.length} of ${assets.length} asset${assets.length === 1 ? "" : "s"}`);
  // Thumbnails one after another, so a long library does not start every render at once.
  void (async () => {
    for (const a of shown) {
      if (thumbs.has(a.id) || a.damaged) continue;
      const t = await commands.assetThumbnail(a.id);
      const fig = grid.querySelector(`.tile[data-asset="${a.id}"]`);
      const img = fig?.querySelector<HTMLImageElement>("img.thumb");
      if (t.status === "ok") {
        thumbs.set(a.id, t.data);
        if (img) img.src = t.data;
      } else if (fig && t.error.kind === "damaged") {
        markDamaged(fig, t.error.message);
      } else if (img) img.title = describe(t.error);
    }
  })();
}

/** Check (deep) or repair, and show what was found; Repair is offered when something is wrong. */
async function health(repair: boolean): Promise<void> {
  const out = byId<HTMLPreElement>("library-health");
  const button = byId<HTMLButtonElement>("library-repair");
  setState("library-state", repair ? "repairing…" : "checking every file…");
  const result = repair ? await commands.libraryRepair() : await commands.libraryCheck(true);
  out.hidden = false;
  if (result.status === "error") {
    out.textContent = describe(result.error);
    out.dataset.healthy = "false";
    button.hidden = false;
    setState("library-state", "the check failed", true);
    return;
  }
  const h = result.data;
  out.dataset.healthy = String(h.healthy);
  out.textContent = [...h.findings, h.healthy ? "library healthy" : "the library has problems"].join("\n");
  button.hidden = h.healthy;
  setState("library-state", `${h.files_checked} files checked`, !h.healthy);
  if (repair) await loadLibrary();
}

export async function loadLibrary(): Promise<void> {
  setState("library-state", "loading…");
  const result = await commands.libraryList();
  if (result.status === "error") {
    byId("library-grid").replaceChildren();
    setState("library-state", describe(result.error), true);
    return;
  }
  assets = result.data;
  renderGrid();
}

export function initLibrary(): void {
  byId("library-refresh").addEventListener("click", () => void loadLibrary());
  initSprite();
  initSheet();
  byId("library-check").addEventListener("click", () => void health(false));
  byId("library-repair").addEventListener("click", () => void health(true));
  byId("library-search").addEventListener("input", renderGrid);
  byId("asset-open-preview").addEventListener("click", () => void openPreview());
  for (const id of [
    "preview-zoom",
    "preview-tile",
    "preview-grid",
    "preview-linear",
    "preview-backdrop",
    "preview-frame",
    "preview-index",
    "preview-onion",
    "preview-animate",
    "preview-fps",
  ]) {
    byId(id).addEventListener("change", () => void renderPreview());
  }
  // New assets appear as their jobs finish, without a refresh.
  onJobEvent((ev) => {
    if (ev.state === "succeeded" && ev.outputs.length > 0 && byId("library").classList.contains("active")) {
      void loadLibrary();
    }
  });
}
