// Jobs: every job of every kind, kept current by the job events (cancel from its row).
import { commands, type JobEvent_Serialize as JobEvent, type JobRecord_Serialize as JobRecord } from "../bindings";
import { byId, describe, el, setState } from "../dom";
import { onJobEvent } from "../jobs";
import { isFinished, progressText } from "../logic";

function row(j: JobRecord): HTMLElement {
  const tr = el("tr", { "data-job": j.id, "data-state": j.state });
  const cancel = el("button", { class: "cancel small", type: "button" }, "Cancel");
  cancel.hidden = isFinished(j.state);
  cancel.addEventListener("click", () => {
    cancel.disabled = true;
    void commands.jobCancel(j.id);
  });
  const actions = el("td");
  actions.append(cancel);
  tr.append(
    el("td", { class: "id" }, j.id),
    el("td", {}, j.spec.type),
    el("td", { class: "state" }, j.state),
    el("td", { class: "progress" }, progressText(j.progress)),
    el("td", { class: "note" }, j.error ?? ""),
    actions,
  );
  return tr;
}

export async function loadJobs(): Promise<void> {
  setState("jobs-state", "loading…");
  const body = byId("jobs-table").querySelector("tbody");
  if (!body) return;
  const result = await commands.jobsList(byId<HTMLInputElement>("jobs-all").checked);
  if (result.status === "error") {
    setState("jobs-state", describe(result.error), true);
    return;
  }
  body.replaceChildren(...result.data.map(row));
  setState("jobs-state", `${result.data.length} job${result.data.length === 1 ? "" : "s"}`);
}

function onEvent(ev: JobEvent): void {
  if (!byId("jobs").classList.contains("active")) return;
  const tr = byId("jobs-table").querySelector<HTMLElement>(`tr[data-job="${ev.id}"]`);
  if (!tr || ev.state === "queued") {
    void loadJobs();
    return;
  }
  tr.dataset.state = ev.state;
  const set = (cls: string, text: string): void => {
    const td = tr.querySelector(`.${cls}`);
    if (td) td.textContent = text;
  };
  set("state", ev.state);
  set("progress", progressText(ev.progress, ev.eta_secs));
  set("note", ev.error ?? "");
  const cancel = tr.querySelector<HTMLButtonElement>("button.cancel");
  if (cancel) cancel.hidden = isFinished(ev.state);
}

export function initJobs(): void {
  byId("jobs-refresh").addEventListener("click", () => void loadJobs());
  byId("jobs-all").addEventListener("change", () => void loadJobs());
  onJobEvent(onEvent);
}
