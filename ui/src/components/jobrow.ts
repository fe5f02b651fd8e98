// A job's row wherever jobs are shown: progress bar, stage with ETA, a preview when the job
// sends one, the inputs it refused (an import's files that do not decode), and Cancel while it
// can still stop.
import { commands, type JobEvent_Serialize as JobEvent } from "../bindings";
import { el } from "../dom";
import { fraction, isFinished, progressText } from "../logic";

// A row made from a command's answer starts at "queued": the screen then hands it the events
// that passed before the answer (`catchUp` in jobs.ts).
export function jobRow(ev: JobEvent, cls = "gen-job"): HTMLElement {
  const row = el("div", { class: `${cls} job-row`, "data-job": ev.id, "data-state": ev.state });
  const cancel = el("button", { class: "cancel", type: "button" }, "Cancel");
  cancel.addEventListener("click", () => {
    cancel.disabled = true;
    void commands.jobCancel(ev.id);
  });
  row.append(
    el("span", { class: "id" }, ev.id.slice(0, 8)),
    el("progress", { max: "1", value: "0" }),
    el("span", { class: "stage" }, ev.state),
    el("img", { class: "job-preview", alt: "", hidden: "" }),
    cancel,
  );
  updateJobRow(row, ev);
  return row;
}

export function updateJobRow(row: HTMLElement, ev: JobEvent): void {
  row.dataset.state = ev.state;
  const bar = row.querySelector("progress");
  if (bar) bar.value = fraction(ev);
  const stage = row.querySelector(".stage");
  if (stage) {
    stage.textContent =
      ev.state === "queued"
        ? "queued: waits for the jobs before it"
        : ev.state === "running"
          ? progressText(ev.progress, ev.eta_secs) || "running"
          : ev.state + (ev.error ? `: ${ev.error}` : "");
  }
  const img = row.querySelector<HTMLImageElement>("img.job-preview");
  if (img && ev.preview) {
    img.src = ev.preview;
    img.hidden = false;
  }
  if (ev.refused.length > 0) {
    const list = row.querySelector("ul.refused") ?? el("ul", { class: "refused" });
    list.replaceChildren(
      ...ev.refused.map((r) => el("li", { "data-path": r.path }, `refused ${r.path}: ${r.reason}`)),
    );
    row.append(list);
  }
  const cancel = row.querySelector<HTMLButtonElement>("button.cancel");
  if (cancel) cancel.hidden = isFinished(ev.state);
}
