// Drop: a generative collection from its TOML spec. "Check rarity" draws the tokens and shows
// each trait value's share; "Make the drop" queues the collection (here or on the farm, then
// published if asked) and shows where it stands as its job reports.
import {
  commands,
  type CidProfile,
  type CollectionCheck,
  type CollectionReport,
  type JobEvent_Serialize as JobEvent,
} from "../bindings";
import { jobRow, updateJobRow } from "../components/jobrow";
import { byId, describe, el, setState } from "../dom";
import { catchUp, onJobEvent } from "../jobs";
import { submittedEvent } from "../logic";

const runs = new Map<string, string>();
/** When the report was last read, per job: a drop of 10,000 tokens reports 10,000 times. */
const lastRead = new Map<string, number>();

function specText(): string {
  return byId<HTMLTextAreaElement>("drop-spec").value;
}

function showRarity(c: CollectionCheck): void {
  const tables = c.traits.map((t) => {
    const table = el("table", { class: "rarity", "data-trait": t.name });
    table.append(el("caption", {}, t.name));
    for (const v of t.values) {
      const tr = el("tr", { "data-value": v.value });
      tr.append(
        el("td", {}, v.value),
        el("td", {}, String(v.count)),
        el("td", {}, `${((v.share ?? 0) * 100).toFixed(1)} %`),
      );
      table.append(tr);
    }
    return table;
  });
  byId("drop-rarity").replaceChildren(
    el("p", { id: "drop-summary" }, `${c.name}: ${c.tokens} tokens, every one unique${c.one_of_ones > 0 ? `, ${c.one_of_ones} one-of-one` : ""}`),
    ...tables,
  );
}

function showReport(r: CollectionReport): void {
  const box = byId("drop-report");
  box.hidden = false;
  box.dataset.made = String(r.made);
  box.dataset.status = r.made === r.tokens ? (r.publish ? "published" : "made") : "making";
  byId("drop-title").textContent = `${r.name}: ${r.made} of ${r.tokens} tokens made`;
  byId("drop-dir").textContent = `${r.dir} (rarity.html, rarity.json, provenance.json)`;
  byId("drop-by").textContent = r.made_by.map(([who, n]) => `${who}: ${n}`).join(", ");
  byId("drop-provenance").textContent = r.provenance ?? "when every token is made";
  byId("drop-base").textContent = r.publish?.base_uri ?? "not published";
}

async function check(): Promise<void> {
  setState("drop-state", "drawing the tokens…");
  const r = await commands.collectionCheck(specText());
  if (r.status === "error") return setState("drop-state", describe(r.error), true);
  setState("drop-state", "");
  showRarity(r.data);
}

async function make(ev: Event): Promise<void> {
  ev.preventDefault();
  const spec = specText();
  const job = await commands.collectionStart(
    spec,
    byId<HTMLInputElement>("drop-farm").checked,
    byId<HTMLInputElement>("drop-publish").checked,
    byId<HTMLSelectElement>("drop-profile").value as CidProfile,
  );
  if (job.status === "error") return setState("drop-state", describe(job.error), true);
  setState("drop-state", "");
  runs.set(job.data.id, spec);
  byId("drop-jobs").prepend(jobRow(submittedEvent(job.data), "drop-job"));
  catchUp(job.data.id, (e) => void followed(e));
}

async function followed(ev: JobEvent): Promise<void> {
  const spec = runs.get(ev.id);
  if (spec === undefined) return;
  const row = document.querySelector<HTMLElement>(`#drop-jobs [data-job='${ev.id}']`);
  if (row) updateJobRow(row, ev);
  if (ev.state === "failed") setState("drop-state", ev.error ?? "the drop failed", true);
  const due = Date.now() - (lastRead.get(ev.id) ?? 0) > 1000;
  if ((ev.progress?.stage === "tokens" && due) || ev.state === "succeeded") {
    lastRead.set(ev.id, Date.now());
    const r = await commands.collectionReport(spec);
    if (r.status === "ok") showReport(r.data);
  }
}

export function initDrop(): void {
  byId("drop-check").addEventListener("click", () => void check());
  byId("drop-form").addEventListener("submit", (ev) => void make(ev));
  onJobEvent((ev) => void followed(ev));
}
