// Re-reads a Mintframe sheet export with a parser we did not write and prints what it read as
// JSON, for the Rust tests to check:
//   node read-export.cjs phaser-hash|phaser-array|phaser-multiatlas FILE.json
//   node read-export.cjs godot FILE.tres
// Phaser's parsers (phaser/src/textures/parsers) are Phaser's own code; they fill a Texture,
// which needs a browser canvas, so `texture()` below stands in for that one object, recording
// what the parser adds to it and nothing else.
const fs = require('fs');
const JSONArray = require('phaser/src/textures/parsers/JSONArray.js');
const JSONHash = require('phaser/src/textures/parsers/JSONHash.js');

function texture(sizes) {
  return {
    source: sizes.map(([width, height]) => ({ width, height })),
    frames: {},
    customData: {},
    add(name, sourceIndex, x, y, w, h) {
      if (this.frames[name]) return null;
      const f = {
        sourceIndex, x, y, w, h,
        setTrim(realWidth, realHeight, x, y, w, h) { this.trim = { realWidth, realHeight, x, y, w, h }; return this; },
        updateUVsInverted() { this.rotated = true; return this; },
      };
      this.frames[name] = f;
      return f;
    },
  };
}

function summary(t) {
  const frames = {};
  for (const [name, f] of Object.entries(t.frames)) {
    if (name === '__BASE') continue;
    frames[name] = {
      x: f.x, y: f.y, w: f.w, h: f.h,
      trim: f.trim ?? null,
      pivot: f.customPivot ? { x: f.pivotX, y: f.pivotY } : null,
    };
  }
  return { frames, customData: t.customData };
}

async function main() {
  const [kind, file] = process.argv.slice(2);
  const text = fs.readFileSync(file, 'utf8');
  if (kind === 'godot') {
    const { parseResource } = await import('@fernforestgames/godot-resource-parser');
    console.log(JSON.stringify(parseResource(text)));
    return;
  }
  const json = JSON.parse(text);
  let t;
  if (kind === 'phaser-multiatlas') {
    // As Phaser's MultiAtlasFile does: one source per texture, each parsed as a JSON array.
    t = texture(json.textures.map((x) => [x.size.w, x.size.h]));
    json.textures.forEach((_, i) => JSONArray(t, i, json));
  } else {
    t = texture([[json.meta.size.w, json.meta.size.h]]);
    (kind === 'phaser-hash' ? JSONHash : JSONArray)(t, 0, json);
  }
  const out = summary(t);
  if (Object.keys(out.frames).length === 0) {
    console.error(`${file}: the parser found no frames`);
    process.exit(1);
  }
  console.log(JSON.stringify(out));
}

main().catch((e) => { console.error(e && e.stack || String(e)); process.exit(1); });
