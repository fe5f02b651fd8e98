// Doctor: what this machine gives Mintframe, and the button that starts the IPFS node.
import { commands, type Check, type DoctorReport } from "../bindings";
import { byId, describe, el, setState } from "../dom";

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
  byId("doctor-checks").replaceChildren(...report.checks.map(renderCheck));
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

export async function loadDoctor(): Promise<void> {
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

export function initDoctor(): void {
  byId("doctor-refresh").addEventListener("click", () => void loadDoctor());
  byId("ipfs-start").addEventListener("click", () => void startIpfs());
}
