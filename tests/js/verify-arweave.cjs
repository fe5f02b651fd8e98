// Verifies what Mintframe signed for Arweave with libraries it did not write: arweave-js checks
// the transaction carrying the bundle (signature, id, data_root recomputed from the bytes),
// arbundles checks the bundle and every data item in it (signature, id, tags). Prints one JSON
// object; exits 1 if anything does not verify.
//   node verify-arweave.cjs PUBLISH_DIR/arweave PUBLISH_DIR/arweave/upload-…/tx.json
const fs = require("fs");
const path = require("path");
const Arweave = require("arweave");
const { Bundle, DataItem } = require("arbundles");

(async () => {
  const dir = process.argv[2];
  const arweave = Arweave.init({});
  const plan = JSON.parse(fs.readFileSync(path.join(dir, "plan.json")));
  const raw = JSON.parse(fs.readFileSync(process.argv[3]));
  const bytes = fs.readFileSync(path.join(dir, "bundle.bin"));
  const out = { problems: [] };

  const tx = arweave.transactions.fromRaw(raw);
  try {
    out.tx_signature = await arweave.transactions.verify(tx);
  } catch (e) {
    out.tx_signature = false;
    out.problems.push(`transaction: ${e.message}`);
  }
  const again = arweave.transactions.fromRaw({ ...raw, data: "" });
  await again.prepareChunks(new Uint8Array(bytes));
  out.tx_data_root = again.data_root === raw.data_root;
  out.tx_data_size = raw.data_size === String(bytes.length);
  const tags = tx.get("tags").map((t) => [t.get("name", { decode: true, string: true }), t.get("value", { decode: true, string: true })]);
  out.tx_bundle_tags = tags.some(([n, v]) => n === "Bundle-Format" && v === "binary") && tags.some(([n, v]) => n === "Bundle-Version" && v === "2.0.0");

  const bundle = new Bundle(bytes);
  out.bundle_verify = await bundle.verify();
  const headerIds = bundle.getIds();
  const ids = [];
  let valid = 0;
  for (let i = 0; i < bundle.length; i++) {
    const item = bundle.get(i);
    const alone = new DataItem(Buffer.from(item.getRaw()));
    if ((await alone.isValid()) && (await DataItem.verify(Buffer.from(item.getRaw())))) valid++;
    else out.problems.push(`item ${i} (${item.id}) does not verify`);
    if (item.id !== headerIds[i]) out.problems.push(`item ${i}: the bundle's header says ${headerIds[i]}, its signature gives ${item.id}`);
    const planned = plan.items.find((p) => p.id === item.id);
    if (!planned) out.problems.push(`item ${item.id} is not in the plan`);
    else {
      const ct = item.tags.find((t) => t.name === "Content-Type");
      if (!ct || ct.value !== planned.content_type) out.problems.push(`item ${item.id}: Content-Type ${ct && ct.value}, planned ${planned.content_type}`);
    }
    if (item.owner !== raw.owner) out.problems.push(`item ${item.id} is signed by another owner`);
    ids.push(item.id);
  }
  out.items = bundle.length;
  out.items_valid = valid;
  const planned = new Set(plan.items.map((p) => p.id));
  out.ids_equal_plan = ids.length === planned.size && ids.every((id) => planned.has(id));
  const ok = out.tx_signature && out.tx_data_root && out.tx_data_size && out.tx_bundle_tags && out.bundle_verify && valid === bundle.length && out.ids_equal_plan && out.problems.length === 0;
  out.ok = ok;
  console.log(JSON.stringify(out));
  process.exit(ok ? 0 : 1);
})().catch((e) => {
  console.log(JSON.stringify({ ok: false, problems: [String(e && e.stack || e)] }));
  process.exit(1);
});
