// Publish: assets in token order, the collection form, the offline check, and the publish as a
// job whose progress arrives as events; then its report and the history.
import { commands, type ArweaveQuote, type CidProfile, type JobEvent_Serialize as JobEvent, type Layout, type PublishReport, type PublishSpec, type Standard } from "../bindings";
import { byId, describe, el, setState } from "../dom";
import { onJobEvent } from "../jobs";
import { fraction, progressText } from "../logic";

/** The publish job this screen follows, with the spec it was asked with. */
let running: { id: string; spec: PublishSpec } | null = null;

/** The Arweave price the user was shown, for the spec it was quoted for: a publish goes ahead
 *  only when the box confirming that price is ticked and the spec has not changed since. */
let quoted: { spec: string; quote: ArweaveQuote } | null = null;

export async function loadPublish(): Promise<void> {
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
  await loadServices();
  await loadWallet();
  await loadPublishHistory();
}

function toArweave(): boolean {
  return byId<HTMLSelectElement>("pub-to").value === "arweave";
}

function showTarget(): void {
  byId("pub-ipfs-target").hidden = toArweave();
  byId("pub-arweave-target").hidden = !toArweave();
  byId("pub-targets").hidden = toArweave();
}

async function loadWallet(): Promise<void> {
  const w = await commands.arweaveWallet();
  byId("pub-ar-wallet").textContent =
    w.status === "ok" ? `${w.data.address} (kept in ${w.data.kept_in})` : describe(w.error);
}

async function importWallet(): Promise<void> {
  const path = byId<HTMLInputElement>("pub-ar-key").value.trim();
  const result = await commands.arweaveWalletImport(path, byId<HTMLInputElement>("pub-ar-keep").checked);
  if (result.status === "error") setState("publish-state", describe(result.error), true);
  else setState("publish-state", `wallet ${result.data.address} imported (${result.data.kept_in})`);
  await loadWallet();
}

async function mint(): Promise<void> {
  const result = await commands.arweaveMint(byId<HTMLInputElement>("pub-ar-gateway").value.trim(), "10");
  if (result.status === "error") setState("publish-state", describe(result.error), true);
  else setState("publish-state", `the wallet holds ${result.data} on the local gateway`);
}

/** Shows the price and balance for `spec`; the confirm box names that price. */
async function quote(spec: PublishSpec): Promise<ArweaveQuote | null> {
  byId("pub-ar-quote").textContent = "signing every file offline and asking the gateway's price…";
  const result = await commands.arweaveQuote(spec);
  const box = byId<HTMLInputElement>("pub-ar-confirm");
  box.checked = false;
  if (result.status === "error") {
    quoted = null;
    box.disabled = true;
    byId("pub-ar-quote").textContent = describe(result.error);
    return null;
  }
  const q = result.data;
  quoted = { spec: JSON.stringify(spec), quote: q };
  byId("pub-ar-quote").textContent =
    `${q.bytes.toLocaleString()} bytes cost ${q.price_ar} (${q.price_winston} winston) on ${q.gateway}; ` +
    `wallet ${q.address} holds ${q.balance_ar}${q.enough ? "" : ": not enough"}`;
  byId("pub-ar-quote").dataset.enough = String(q.enough);
  byId("pub-ar-confirm-text").textContent = `Pay ${q.price_ar} to store this collection permanently`;
  box.disabled = !q.enough;
  return q;
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
      const pick = el("input", { type: "checkbox", value: svc.name, "data-service": svc.name });
      pick.disabled = !svc.has_token;
      const remove = el("button", { type: "button", class: "small" }, "Remove");
      remove.addEventListener("click", () => {
        void commands.pinningServiceRemove(svc.name).then(() => loadServices());
      });
      label.append(
        pick,
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

/** The form as a spec; the traits go through the same parser as the CLI's `--trait`. */
async function publishSpec(): Promise<PublishSpec | string> {
  const ids = [...byId("publish-assets").querySelectorAll<HTMLInputElement>("input:checked")].map(
    (i) => i.value,
  );
  if (ids.length === 0) return "pick at least one asset";
  const traits = await commands.traitsParse(byId<HTMLTextAreaElement>("pub-traits").value);
  if (traits.status === "error") return describe(traits.error);
  const external = byId<HTMLInputElement>("pub-external").value.trim();
  const cluster = byId<HTMLInputElement>("pub-cluster").value.trim();
  const profile = byId<HTMLSelectElement>("pub-cid").value as CidProfile;
  const arweave = toArweave();
  return {
    asset_ids: ids,
    name: byId<HTMLInputElement>("pub-name").value.trim(),
    description: byId<HTMLTextAreaElement>("pub-description").value,
    symbol: byId<HTMLInputElement>("pub-symbol").value.trim(),
    external_url: external === "" ? null : external,
    traits: traits.data,
    standard: byId<HTMLSelectElement>("pub-standard").value as Standard,
    layout: byId<HTMLSelectElement>("pub-layout").value as Layout,
    cid_version: profile === "unixfs-v0-2015" ? 0 : 1,
    profile,
    pin_to: arweave
      ? []
      : [...document.querySelectorAll<HTMLInputElement>("#pub-services input:checked")].map(
          (i) => i.value,
        ),
    arweave: arweave ? { gateway: byId<HTMLInputElement>("pub-ar-gateway").value.trim(), max_winston: null } : null,
    cluster:
      arweave || cluster === ""
        ? null
        : {
            url: cluster,
            replication_min: Number(byId<HTMLInputElement>("pub-rmin").value || "-1"),
            replication_max: Number(byId<HTMLInputElement>("pub-rmax").value || "-1"),
          },
  };
}

function showReport(r: PublishReport): void {
  byId("publish-findings").replaceChildren(
    ...r.findings.map((f) =>
      el(
        "div",
        { class: `finding ${f.error ? "error" : "warning"}` },
        `${f.error ? "Error" : "Warning"}: ${f.file} ${f.field}: ${f.message}`,
      ),
    ),
    ...(r.notes ?? []).map((n) => el("div", { class: "finding note" }, `${r.profile}: ${n}`)),
  );
  byId("publish-report").hidden = false;
  const ar = r.arweave ?? null;
  byId("publish-report-title").textContent =
    r.status === "pending" && ar !== null
      ? `Sent to Arweave: transaction ${ar.bundle_tx} is not in a block yet; publish again later to check every file`
      : r.status === "published" && ar !== null
      ? `Published on Arweave: ${r.verified_files} files read back through the gateway, ${ar.ids_checked} ids as computed offline`
      : r.status === "published"
      ? `Published: ${r.verified_files} files read back from the node${r.uploaded_media || r.uploaded_metadata ? "" : " (already pinned; nothing re-sent)"}`
      : `Planned (offline): ${r.findings.filter((f) => f.error).length} errors, ${r.findings.filter((f) => !f.error).length} warnings`;
  byId("publish-report").dataset.status = r.status;
  byId("pub-base-uri").textContent = r.base_uri;
  byId("pub-contract-uri").textContent = r.contract_uri;
  byId("pub-media-cid").textContent = ar ? `ar://${ar.media_manifest}/` : `ipfs://${r.media_cid}/`;
  byId("pub-metadata-cid").textContent = ar ? `ar://${ar.metadata_manifest}/` : `ipfs://${r.metadata_cid}/`;
  byId("pub-arweave").textContent = ar
    ? `${ar.items} data items, ${ar.bundle_bytes.toLocaleString()} bytes, wallet ${ar.address}` +
      (ar.bundle_tx
        ? `; transaction ${ar.bundle_tx} (${ar.price_ar}), chunks ${ar.chunks_sent} sent + ${ar.chunks_skipped} already acknowledged of ${ar.chunks_total}, ${ar.confirmed ? "in a block" : "pending"}; ${(ar.upload_secs ?? 0).toFixed(1)} s sending, ${(ar.confirm_secs ?? 0).toFixed(1)} s until mined, ${(ar.verify_secs ?? 0).toFixed(1)} s reading back`
        : "")
    : "—";
  byId("pub-gateway").textContent = r.gateway_url;
  byId("pub-cars").textContent = `${r.media_car}\n${r.metadata_car}`;
  byId("pub-token-uris").replaceChildren(...r.token_uris.map((u) => el("li", {}, u)));
  byId("pub-remote-pins").replaceChildren(
    ...r.remote_pins.map((p) =>
      el(
        "li",
        { "data-status": p.status },
        `${p.service}: ${p.cid} ${p.status} (${p.requestid})${(p.info ?? []).length > 0 ? ` — ${(p.info ?? []).join("; ")}` : ""}`,
      ),
    ),
  );
}

async function checkPublish(): Promise<void> {
  const spec = await publishSpec();
  if (typeof spec === "string") {
    setState("publish-state", spec, true);
    return;
  }
  setState("publish-state", spec.arweave ? "signing every file offline…" : "computing CIDs offline…");
  const result = await commands.publishCheck(spec);
  if (result.status === "ok") {
    showReport(result.data);
    setState("publish-state", "checked");
  } else setState("publish-state", describe(result.error), true);
}

async function runPublish(ev: Event): Promise<void> {
  ev.preventDefault();
  const spec = await publishSpec();
  if (typeof spec === "string") {
    setState("publish-state", spec, true);
    return;
  }
  if (spec.arweave) {
    // The price first; the upload only once the user ticked the box naming it.
    const confirmed =
      quoted !== null &&
      quoted.spec === JSON.stringify(spec) &&
      byId<HTMLInputElement>("pub-ar-confirm").checked;
    if (!confirmed) {
      const q = await quote(spec);
      if (q === null) setState("publish-state", "no price: see above", true);
      else if (!q.enough) setState("publish-state", `the wallet cannot pay ${q.price_ar}`, true);
      else setState("publish-state", `confirm the price (${q.price_ar}), then 4. Publish`);
      return;
    }
  }
  // The price the user ticked is the most the upload may cost.
  if (spec.arweave && quoted !== null) spec.arweave.max_winston = quoted.quote.price_winston;
  const result = await commands.publishCollection(spec);
  byId<HTMLInputElement>("pub-ar-confirm").checked = false;
  if (result.status === "error") {
    setState("publish-state", describe(result.error), true);
    return;
  }
  running = { id: result.data.id, spec };
  byId<HTMLButtonElement>("pub-run").disabled = true;
  const bar = byId<HTMLProgressElement>("publish-progress");
  bar.hidden = false;
  bar.value = 0;
  bar.dataset.job = result.data.id;
  setState("publish-state", "publishing: queued");
}

async function onEvent(ev: JobEvent): Promise<void> {
  if (running === null || ev.id !== running.id) return;
  const bar = byId<HTMLProgressElement>("publish-progress");
  bar.value = fraction(ev);
  bar.dataset.state = ev.state;
  if (ev.state === "running") setState("publish-state", progressText(ev.progress, ev.eta_secs));
  if (ev.state === "queued" || ev.state === "running") return;
  const { spec } = running;
  running = null;
  byId<HTMLButtonElement>("pub-run").disabled = false;
  bar.hidden = true;
  if (ev.state === "succeeded") {
    const report = await commands.publishOutcome(spec);
    if (report.status === "ok") {
      showReport(report.data);
      setState("publish-state", `published: baseURI ${report.data.base_uri}`);
    } else setState("publish-state", describe(report.error), true);
  } else setState("publish-state", `publish ${ev.state}${ev.error ? `: ${ev.error}` : ""}`, true);
  await loadPublishHistory();
}

export function initPublish(): void {
  byId("pub-check").addEventListener("click", () => void checkPublish());
  byId("svc-add").addEventListener("click", () => void addService());
  byId("pub-to").addEventListener("change", showTarget);
  byId("pub-ar-import").addEventListener("click", () => void importWallet());
  byId("pub-ar-mint").addEventListener("click", () => void mint());
  byId("publish-form").addEventListener("submit", (ev) => void runPublish(ev));
  onJobEvent((ev) => void onEvent(ev));
}
