// The studio's screens. Every call goes through the generated `commands`; no types are written
// by hand here, they all come from ./bindings.ts.
import {
  commands,
  type AssetSummary,
  type Check,
  type DoctorReport,
  type JobRecord_Serialize as JobRecord,
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

async function showAsset(a: AssetSummary): Promise<void> {
  const pre = byId<HTMLPreElement>("asset-detail");
  const result = await commands.assetDetail(a.id);
  pre.hidden = false;
  pre.textContent =
    result.status === "ok" ? JSON.stringify(result.data, null, 2) : describe(result.error);
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
    const cell = el("td", { colspan: "5", class: "empty" }, "The library is empty. Import files with `mintframe library import FILE…`.");
    row.append(cell);
    body.replaceChildren(row);
  } else {
    body.replaceChildren(
      ...assets.map((a) => {
        const row = el("tr", { "data-asset": a.id });
        row.append(
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

const loaders: Record<string, () => Promise<void>> = {
  doctor: loadDoctor,
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
  byId("jobs-refresh").addEventListener("click", () => void loadJobs());
  byId("jobs-all").addEventListener("change", () => void loadJobs());
  void loadDoctor();
});
