// Farm: the render farm this studio coordinates, as its workers' heartbeats and the queue
// tell it.
import { commands, type FarmStatus } from "../bindings";
import { byId, describe, el, setState } from "../dom";

function show(s: FarmStatus): void {
  byId("farm-summary").hidden = false;
  byId("farm-url").textContent = s.url;
  byId("farm-queue").textContent = `${s.queued} waiting, ${s.in_flight} in hand, ${s.results} results not yet taken`;
  byId("farm-rate").textContent = `${(s.per_minute ?? 0).toFixed(1)} tasks a minute`;
  const body = byId("farm-workers").querySelector("tbody");
  body?.replaceChildren(
    ...s.workers.map((w) => {
      const tr = el("tr", { "data-worker": w.worker, "data-state": w.state });
      for (const text of [w.worker, w.state, String(w.done), (w.per_minute ?? 0).toFixed(1), w.device, w.task ?? ""]) {
        tr.append(el("td", {}, text));
      }
      return tr;
    }),
  );
  if (s.workers.length === 0) setState("farm-state", "no worker heard from in the last few seconds");
}

export async function loadFarm(): Promise<void> {
  setState("farm-state", "listening to the workers…");
  const r = await commands.farmStatus();
  if (r.status === "error") return setState("farm-state", describe(r.error), true);
  setState("farm-state", "");
  show(r.data);
}

export function initFarm(): void {
  byId("farm-refresh").addEventListener("click", () => void loadFarm());
}
