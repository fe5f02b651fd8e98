// The studio's screens. Every call goes through the generated `commands`; no types are written
// by hand here, they all come from ./bindings.ts.
import {
  commands,
  type AssetSummary,
  type Check,
  type DoctorReport,
  type GenerateSpec,
  type JobRecord_Serialize as JobRecord,
  type ModelInfo,
  type PublishReport,
  type PublishSpec,
  type TraitSpec,
  type UiError,
} from "./bindings";

function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string> = {},
  text?: string,
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

function byId<T extends HTMLElement>(id: string): T {
  const node = document.getElementById(id);
  if (!node) throw new Error(`missing #${id}`);
  return node as T;
}

function setState(id: string, text: string, error = false): void {
  const node = byId(id);
  node.textContent = text;
  node.classList.toggle("error", error);
}

function describe(e: UiError): string {
  return `${e.message} (${e.kind})`;
}

function bytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB"];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${u === 0 ? v : v.toFixed(1)} ${units[u]}`;
}

function renderCheck(c: Check): HTMLElement {
  const box = el("div", { class: "check", "data-component": c.component, "data-status": c.status });
  const head = el("div", { class: "head" });
  head.append(
    el("span", { class: "component" }, c.component),
    el("span", { class: "status" }, c.status),
    el("span", { class: "summary" }, c.summary),
  );
  box.append(head);
  if (c.details.length > 0) {
    const dl = el("dl");
    for (const d of c.details) dl.append(el("dt", {}, d.key), el("dd", {}, d.value));
    box.append(dl);
  }
  return box;
}

function renderDoctor(report: DoctorReport): void {
  const list = byId("doctor-checks");
  list.replaceChildren(...report.checks.map(renderCheck));
  const bad = report.checks.filter((c) => c.status !== "ok");
  setState(
    "doctor-state",
    bad.length === 0
      ? `Mintframe ${report.app_version}: every component found`
      : `Mintframe ${report.app_version}: ${bad.map((c) => c.component).join(", ")} need attention`,
  );
  const ipfs = report.checks.find((c) => c.component === "ipfs");
  byId("ipfs-start").hidden = ipfs === undefined || ipfs.status === "ok";
  document.body.dataset.doctor = "done";
}

async function loadDoctor(): Promise<void> {
  setState("doctor-state", "checking…");
  document.body.dataset.doctor = "running";
  const result = await commands.doctor();
  if (result.status === "ok") renderDoctor(result.data);
  else setState("doctor-state", describe(result.error), true);
}

async function startIpfs(): Promise<void> {
  const button = byId<HTMLButtonElement>("ipfs-start");
  button.disabled = true;
  setState("doctor-state", "starting the IPFS node…");
  const result = await commands.ipfsStart();
  button.disabled = false;
  if (result.status === "ok") await loadDoctor();
  else setState("doctor-state", describe(result.error), true);
}

let previewAsset: string | null = null;

/** "32x32" → [32, 32]; anything else → null (the whole image). */
function frameSize(text: string): [number, number] | null {
  const m = /^\s*(\d+)\s*[xX×]\s*(\d+)\s*$/.exec(text);
  return m ? [Number(m[1]), Number(m[2])] : null;
}

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
    // Not a still (a clip, a GIF): nothing to preview yet; say why.
    box.hidden = true;
    setState("library-state", describe(result.error), result.error.kind !== "render");
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

// --- Generate -------------------------------------------------------------------------------

let models: ModelInfo[] = [];

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

async function loadGenerate(): Promise<void> {
  if (models.length > 0) return;
  const result = await commands.modelsList();
  if (result.status === "error") {
    setState("generate-state", describe(result.error), true);
    return;
  }
  models = result.data;
  const select = byId<HTMLSelectElement>("gen-model");
  select.replaceChildren(
    ...models.map((m) => {
      const o = el("option", { value: m.id }, `${m.name}${m.installed ? "" : " (not installed)"}`);
      return o;
    }),
  );
  applyModelDefaults();
  setState("generate-state", "");
}

async function showResults(job: JobRecord): Promise<void> {
  const box = byId("gen-results");
  for (const id of job.outputs) {
    const image = await commands.assetImage(id);
    const fig = el("figure", { "data-asset": id });
    if (image.status === "ok" && image.data !== null) {
      fig.append(el("img", { src: image.data, alt: id }));
    }
    fig.append(el("figcaption", {}, id));
    box.prepend(fig);
  }
}

function renderGenJob(row: HTMLElement, j: JobRecord): void {
  row.dataset.state = j.state;
  const bar = row.querySelector("progress");
  const stage = row.querySelector(".stage");
  if (bar && j.progress && j.progress.total > 0) {
    bar.max = j.progress.total;
    bar.value = j.progress.step;
  }
  if (stage) {
    stage.textContent =
      j.state === "running" || j.state === "queued"
        ? progressText(j) || j.state
        : j.state + (j.error ? `: ${j.error}` : "");
  }
  const cancel = row.querySelector<HTMLButtonElement>("button.cancel");
  if (cancel) cancel.hidden = j.state !== "running" && j.state !== "queued";
}

async function follow(job: JobRecord): Promise<void> {
  const row = el("div", { class: "gen-job", "data-job": job.id, "data-state": job.state });
  const cancel = el("button", { class: "cancel", type: "button" }, "Cancel");
  cancel.addEventListener("click", () => {
    cancel.disabled = true;
    void commands.jobCancel(job.id);
  });
  row.append(el("span", { class: "id" }, job.id.slice(0, 8)), el("progress", { max: "1", value: "0" }), el("span", { class: "stage" }, "queued"), cancel);
  byId("gen-jobs").prepend(row);
  for (;;) {
    await new Promise((r) => setTimeout(r, 300));
    const result = await commands.jobsList(true);
    if (result.status === "error") {
      setState("generate-state", describe(result.error), true);
      return;
    }
    const j = result.data.find((x) => x.id === job.id);
    if (!j) continue;
    renderGenJob(row, j);
    if (j.state === "succeeded" || j.state === "failed" || j.state === "cancelled") {
      if (j.state === "succeeded") await showResults(j);
      setState("generate-state", `job ${j.state}`, j.state === "failed");
      return;
    }
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
    scheduler: byId<HTMLSelectElement>("gen-scheduler").value,
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
  setState("generate-state", `job ${result.data.id.slice(0, 8)} started`);
  await follow(result.data);
}

async function loadLibrary(): Promise<void> {
  setState("library-state", "loading…");
  const body = byId("library-table").querySelector("tbody");
  if (!body) return;
  const result = await commands.libraryList();
  if (result.status === "error") {
    body.replaceChildren();
    setState("library-state", describe(result.error), true);
    return;
  }
  const assets = result.data;
  if (assets.length === 0) {
    const row = el("tr");
    const cell = el("td", { colspan: "6", class: "empty" }, "The library is empty. Import files with `mintframe library import FILE…`.");
    row.append(cell);
    body.replaceChildren(row);
  } else {
    body.replaceChildren(
      ...assets.map((a) => {
        const row = el("tr", { "data-asset": a.id });
        const thumbCell = el("td", { class: "thumb-cell" });
        thumbCell.append(el("img", { class: "thumb", alt: "" }));
        row.append(
          thumbCell,
          el("td", {}, a.name),
          el("td", {}, a.kind),
          el("td", {}, bytes(a.size_bytes)),
          el("td", {}, new Date(a.created_at_ms).toLocaleString()),
          el("td", { class: "id" }, a.id),
        );
        row.addEventListener("click", () => void showAsset(a));
        return row;
      }),
    );
    // Thumbnails one after another, so a long library does not start every render at once.
    void (async () => {
      for (const a of assets) {
        const img = body.querySelector<HTMLImageElement>(`tr[data-asset="${a.id}"] img.thumb`);
        if (!img) continue;
        const t = await commands.assetThumbnail(a.id);
        if (t.status === "ok") img.src = t.data;
        else img.title = describe(t.error);
      }
    })();
  }
  setState("library-state", `${assets.length} asset${assets.length === 1 ? "" : "s"}`);
}

function progressText(j: JobRecord): string {
  if (!j.progress) return "";
  const p = j.progress;
  return p.total > 0 ? `${p.stage} ${p.step}/${p.total}` : p.stage;
}

async function loadJobs(): Promise<void> {
  setState("jobs-state", "loading…");
  const body = byId("jobs-table").querySelector("tbody");
  if (!body) return;
  const all = byId<HTMLInputElement>("jobs-all").checked;
  const result = await commands.jobsList(all);
  if (result.status === "error") {
    setState("jobs-state", describe(result.error), true);
    return;
  }
  body.replaceChildren(
    ...result.data.map((j) => {
      const row = el("tr", { "data-job": j.id, "data-state": j.state });
      row.append(
        el("td", { class: "id" }, j.id),
        el("td", {}, j.spec.type),
        el("td", {}, j.state),
        el("td", {}, progressText(j)),
        el("td", {}, j.error ?? ""),
      );
      return row;
    }),
  );
  setState("jobs-state", `${result.data.length} job${result.data.length === 1 ? "" : "s"}`);
}

// --- Publish --------------------------------------------------------------------------------

async function loadPublish(): Promise<void> {
  byId("publish-node").textContent = "";
  const list = byId("publish-assets");
  const result = await commands.libraryList();
  if (result.status === "error") {
    setState("publish-state", describe(result.error), true);
    return;
  }
  // Oldest first, so token numbers follow the order things were made.
  const assets = [...result.data].sort((a, b) => a.created_at_ms - b.created_at_ms);
  const picked = new Set(
    [...list.querySelectorAll<HTMLInputElement>("input:checked")].map((i) => i.value),
  );
  list.replaceChildren(
    ...assets.map((a) => {
      const li = el("li");
      const box = el("input", { type: "checkbox", value: a.id, "data-asset": a.id });
      box.checked = picked.has(a.id);
      const img = el("img", { alt: "" });
      void commands.assetThumbnail(a.id).then((t) => {
        if (t.status === "ok") img.src = t.data;
      });
      li.append(box, img, el("span", {}, `${a.name} (${a.kind})`));
      return li;
    }),
  );
  await loadPublishHistory();
}

async function loadServices(): Promise<void> {
  const box = byId("pub-services");
  const result = await commands.pinningServices();
  if (result.status === "error") {
    box.textContent = describe(result.error);
    return;
  }
  if (result.data.length === 0) {
    box.textContent = "None yet: the collection stays on this machine's node.";
    return;
  }
  box.replaceChildren(
    ...result.data.map((svc) => {
      const label = el("label", { class: "check-label" });
      const box2 = el("input", { type: "checkbox", value: svc.name, "data-service": svc.name });
      box2.disabled = !svc.has_token;
      const remove = el("button", { type: "button", class: "small" }, "Remove");
      remove.addEventListener("click", () => {
        void commands.pinningServiceRemove(svc.name).then(() => loadServices());
      });
      label.append(
        box2,
        el("span", {}, ` ${svc.name} — ${svc.endpoint}${svc.has_token ? "" : " (no token in the keyring)"} `),
        remove,
      );
      return label;
    }),
  );
}

async function addService(): Promise<void> {
  const token = byId<HTMLInputElement>("svc-token");
  const result = await commands.pinningServiceAdd(
    byId<HTMLInputElement>("svc-name").value.trim(),
    byId<HTMLInputElement>("svc-endpoint").value.trim(),
    token.value === "" ? null : token.value,
  );
  // The token field is cleared whatever happened: it is not kept in the page.
  token.value = "";
  if (result.status === "error") setState("publish-state", describe(result.error), true);
  else setState("publish-state", "pinning service saved");
  await loadServices();
}

async function loadPublishHistory(): Promise<void> {
  const body = byId("publish-table").querySelector("tbody");
  if (!body) return;
  const result = await commands.publishList();
  if (result.status === "error") return;
  body.replaceChildren(
    ...result.data.map((p) => {
      const row = el("tr", { "data-publish": String(p.id), "data-status": p.status });
      row.append(
        el("td", {}, String(p.id)),
        el("td", {}, p.name),
        el("td", {}, p.status),
        el("td", { class: "id" }, p.root_cid ?? "—"),
        el("td", {}, p.target),
        el("td", {}, new Date(p.updated_at_ms).toLocaleString()),
      );
      return row;
    }),
  );
}

function parseTraits(text: string): TraitSpec[] | string {
  const out: TraitSpec[] = [];
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "") continue;
    const eq = line.indexOf("=");
    if (eq < 1) return `trait "${line}": use Name=Value or Name:type=Value`;
    const key = line.slice(0, eq);
    const colon = key.indexOf(":");
    out.push({
      trait_type: (colon < 0 ? key : key.slice(0, colon)).trim(),
      display_type: colon < 0 ? null : key.slice(colon + 1).trim(),
      value: line.slice(eq + 1),
    });
  }
  return out;
}

function publishSpec(): PublishSpec | string {
  const ids = [...byId("publish-assets").querySelectorAll<HTMLInputElement>("input:checked")].map(
    (i) => i.value,
  );
  if (ids.length === 0) return "pick at least one asset";
  const traits = parseTraits(byId<HTMLTextAreaElement>("pub-traits").value);
  if (typeof traits === "string") return traits;
  const external = byId<HTMLInputElement>("pub-external").value.trim();
  const cluster = byId<HTMLInputElement>("pub-cluster").value.trim();
  return {
    asset_ids: ids,
    name: byId<HTMLInputElement>("pub-name").value.trim(),
    description: byId<HTMLTextAreaElement>("pub-description").value,
    symbol: byId<HTMLInputElement>("pub-symbol").value.trim(),
    external_url: external === "" ? null : external,
    traits,
    standard: byId<HTMLSelectElement>("pub-standard").value,
    layout: byId<HTMLSelectElement>("pub-layout").value,
    cid_version: Number(byId<HTMLSelectElement>("pub-cid").value),
    pin_to: [...document.querySelectorAll<HTMLInputElement>("#pub-services input:checked")].map(
      (i) => i.value,
    ),
    cluster:
      cluster === ""
        ? null
        : {
            url: cluster,
            replication_min: Number(byId<HTMLInputElement>("pub-rmin").value || "-1"),
            replication_max: Number(byId<HTMLInputElement>("pub-rmax").value || "-1"),
          },
  };
}

function showReport(r: PublishReport): void {
  const findings = byId("publish-findings");
  findings.replaceChildren(
    ...r.findings.map((f) =>
      el(
        "div",
        { class: `finding ${f.error ? "error" : "warning"}` },
        `${f.error ? "Error" : "Warning"}: ${f.file} ${f.field}: ${f.message}`,
      ),
    ),
  );
  byId("publish-report").hidden = false;
  byId("publish-report-title").textContent =
    r.status === "published"
      ? `Published: ${r.verified_files} files read back from the node${r.uploaded_media || r.uploaded_metadata ? "" : " (already pinned; nothing re-sent)"}`
      : `Planned (offline): ${r.findings.filter((f) => f.error).length} errors, ${r.findings.filter((f) => !f.error).length} warnings`;
  byId("publish-report").dataset.status = r.status;
  byId("pub-base-uri").textContent = r.base_uri;
  byId("pub-contract-uri").textContent = r.contract_uri;
  byId("pub-media-cid").textContent = `ipfs://${r.media_cid}/`;
  byId("pub-metadata-cid").textContent = `ipfs://${r.metadata_cid}/`;
  byId("pub-gateway").textContent = r.gateway_url;
  byId("pub-cars").textContent = `${r.media_car}\n${r.metadata_car}`;
  byId("pub-token-uris").replaceChildren(...r.token_uris.map((u) => el("li", {}, u)));
  byId("pub-remote-pins").replaceChildren(
    ...r.remote_pins.map((p) =>
      el("li", { "data-status": p.status }, `${p.service}: ${p.cid} ${p.status} (${p.requestid})`),
    ),
  );
}

async function checkPublish(): Promise<void> {
  const spec = publishSpec();
  if (typeof spec === "string") {
    setState("publish-state", spec, true);
    return;
  }
  setState("publish-state", "computing CIDs offline…");
  const result = await commands.publishCheck(spec);
  if (result.status === "ok") {
    showReport(result.data);
    setState("publish-state", "checked");
  } else setState("publish-state", describe(result.error), true);
}

async function runPublish(ev: Event): Promise<void> {
  ev.preventDefault();
  const spec = publishSpec();
  if (typeof spec === "string") {
    setState("publish-state", spec, true);
    return;
  }
  const button = byId<HTMLButtonElement>("pub-run");
  const bar = byId<HTMLProgressElement>("publish-progress");
  button.disabled = true;
  bar.hidden = false;
  setState("publish-state", "publishing…");
  const timer = window.setInterval(() => {
    void commands.publishProgress().then((p) => {
      if (p.status === "ok" && p.data.running) {
        bar.value = p.data.fraction ?? 0;
        setState("publish-state", p.data.message);
      }
    });
  }, 300);
  const result = await commands.publishCollection(spec);
  window.clearInterval(timer);
  button.disabled = false;
  bar.hidden = true;
  if (result.status === "ok") {
    showReport(result.data);
    setState("publish-state", `published: baseURI ${result.data.base_uri}`);
  } else setState("publish-state", describe(result.error), true);
  await loadPublishHistory();
}

const loaders: Record<string, () => Promise<void>> = {
  publish: loadPublish,
  doctor: loadDoctor,
  generate: loadGenerate,
  library: loadLibrary,
  jobs: loadJobs,
};

function show(screen: string): void {
  for (const s of document.querySelectorAll<HTMLElement>(".screen")) {
    s.classList.toggle("active", s.id === screen);
  }
  for (const t of document.querySelectorAll<HTMLElement>(".tab")) {
    t.classList.toggle("active", t.dataset.screen === screen);
  }
  void loaders[screen]?.();
}

window.addEventListener("DOMContentLoaded", () => {
  for (const t of document.querySelectorAll<HTMLElement>(".tab")) {
    t.addEventListener("click", () => show(t.dataset.screen ?? "doctor"));
  }
  byId("doctor-refresh").addEventListener("click", () => void loadDoctor());
  byId("ipfs-start").addEventListener("click", () => void startIpfs());
  byId("library-refresh").addEventListener("click", () => void loadLibrary());
  byId("pub-check").addEventListener("click", () => void checkPublish());
  byId("svc-add").addEventListener("click", () => void addService());
  byId("publish-form").addEventListener("submit", (ev) => void runPublish(ev));
  byId("asset-open-preview").addEventListener("click", () => void openPreview());
  byId("jobs-refresh").addEventListener("click", () => void loadJobs());
  byId("jobs-all").addEventListener("change", () => void loadJobs());
  byId("gen-model").addEventListener("change", applyModelDefaults);
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
  byId("generate-form").addEventListener("submit", (ev) => void runGenerate(ev));
  void loadDoctor();
});
