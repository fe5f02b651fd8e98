// The yardstick for scripts/bench-arweave: arweave-js's own transaction uploader sending a file
// to a gateway (createTransaction, sign, getUploader, uploadChunk until complete), then mined
// and waited for. Prints the seconds each part took as JSON.
//   node upload-arweave.cjs GATEWAY_URL WALLET.json FILE
const fs = require("fs");
const Arweave = require("arweave");

(async () => {
  const [url, walletPath, file] = process.argv.slice(2);
  const u = new URL(url);
  const arweave = Arweave.init({ host: u.hostname, port: Number(u.port), protocol: u.protocol.replace(":", ""), timeout: 600000 });
  const key = JSON.parse(fs.readFileSync(walletPath));
  const address = await arweave.wallets.jwkToAddress(key);
  await fetch(`${url}/mint/${address}/1000000000000000000`);
  const t0 = Date.now();
  const data = fs.readFileSync(file);
  const tx = await arweave.createTransaction({ data }, key);
  tx.addTag("Content-Type", "application/octet-stream");
  await arweave.transactions.sign(tx, key);
  const t1 = Date.now();
  const uploader = await arweave.transactions.getUploader(tx);
  while (!uploader.isComplete) await uploader.uploadChunk();
  const t2 = Date.now();
  await fetch(`${url}/mine`);
  for (;;) {
    const r = await fetch(`${url}/tx/${tx.id}/status`);
    const text = await r.text();
    if (r.status === 200 && text.trim() !== "Pending") break;
    await new Promise((res) => setTimeout(res, 300));
  }
  const t3 = Date.now();
  console.log(JSON.stringify({ id: tx.id, bytes: data.length, chunks: uploader.totalChunks, sign_secs: (t1 - t0) / 1000, upload_secs: (t2 - t1) / 1000, confirm_secs: (t3 - t2) / 1000 }));
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
