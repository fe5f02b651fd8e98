import { describe, expect, it } from "vitest";
import type { AssetSummary, JobEvent_Serialize as JobEvent } from "./bindings";
import {
  parseKeys,
  applyEvent,
  clampJoint,
  hitJoint,
  packFacings,
  POSE_COLORS,
  POSE_LIMBS,
  bytes,
  directionAnimations,
  duration,
  fraction,
  frameSize,
  lossPolyline,
  matches,
  moveItem,
  parsePivot,
  progressText,
  spriteSteps,
  submittedEvent,
} from "./logic";

function ev(over: Partial<JobEvent>): JobEvent {
  return {
    id: "j1",
    kind: "generate",
    state: "running",
    progress: null,
    eta_secs: null,
    preview: null,
    outputs: [],
    refused: [],
    error: null,
    error_kind: null,
    ...over,
  };
}

describe("formatting", () => {
  it("writes sizes in binary units", () => {
    expect(bytes(512)).toBe("512 B");
    expect(bytes(1536)).toBe("1.5 KiB");
    expect(bytes(5 * 1024 * 1024)).toBe("5.0 MiB");
  });
  it("reads a frame size and refuses anything else", () => {
    expect(frameSize(" 32x16 ")).toEqual([32, 16]);
    expect(frameSize("32×32")).toEqual([32, 32]);
    expect(frameSize("32")).toBeNull();
  });
  it("shows the step, the total and the time left", () => {
    expect(progressText({ stage: "denoise", step: 3, total: 20 }, 75)).toBe(
      "denoise 3/20 · 1 min 15 s left",
    );
    expect(progressText({ stage: "load model", step: 0, total: 0 })).toBe("load model");
    expect(duration(3700)).toBe("1 h 1 min");
  });
});

describe("the job reducer", () => {
  it("keeps the last progress and rises to 100 % when the job succeeds", () => {
    const jobs = new Map<string, JobEvent>();
    applyEvent(jobs, ev({ state: "queued" }));
    applyEvent(jobs, ev({ progress: { stage: "denoise", step: 5, total: 10 } }));
    expect(fraction(jobs.get("j1")!)).toBe(0.5);
    applyEvent(jobs, ev({ state: "succeeded", outputs: ["a1"] }));
    const done = jobs.get("j1")!;
    expect(done.progress?.step).toBe(5);
    expect(done.outputs).toEqual(["a1"]);
    expect(fraction(done)).toBe(1);
  });
  it("never moves an ended job back to running", () => {
    const jobs = new Map<string, JobEvent>();
    applyEvent(jobs, ev({ state: "cancelled" }));
    applyEvent(jobs, ev({ state: "running", progress: { stage: "denoise", step: 9, total: 10 } }));
    expect(jobs.get("j1")!.state).toBe("cancelled");
  });
});

describe("library search", () => {
  const a: AssetSummary = {
    id: "x",
    kind: "image",
    name: "slime.png",
    created_at_ms: 0,
    size_bytes: 1,
    prompt: "a green slime, pixel art",
    model: "tiny-sd",
  };
  it("finds an asset by words of its prompt, kind or model", () => {
    expect(matches(a, "green pixel")).toBe(true);
    expect(matches(a, "tiny-sd image")).toBe(true);
    expect(matches(a, "knight")).toBe(false);
    expect(matches(a, "")).toBe(true);
  });
});

describe("a submitted job", () => {
  it("stands as an event of its own kind and state, with nothing made yet", () => {
    const ev = submittedEvent({
      id: "j9",
      spec: { type: "process", sources: ["a"], steps: [], kind: null },
      state: "queued",
      progress: null,
      error: null,
      outputs: [],
      refused: [],
      created_at_ms: 0,
      updated_at_ms: 0,
    });
    expect(ev.kind).toBe("process");
    expect(ev.state).toBe("queued");
    expect(ev.outputs).toEqual([]);
    expect(fraction(ev)).toBe(0);
  });
});

describe("sheets and sprites", () => {
  it("splits frames into walk directions in RPG row order", () => {
    const a = directionAnimations(4, 16);
    expect(Array.isArray(a) && a.map((x) => [x.name, x.from, x.to])).toEqual([
      ["walk_down", 0, 3],
      ["walk_left", 4, 7],
      ["walk_right", 8, 11],
      ["walk_up", 12, 15],
    ]);
    expect(directionAnimations(3, 9)).toBe("directions are 1, 2, 4 or 8");
    expect(directionAnimations(4, 10)).toBe("10 frames do not split into 4 directions");
  });

  it("moves a frame up and down and stops at the ends", () => {
    expect(moveItem(["a", "b", "c"], 2, -1)).toEqual(["a", "c", "b"]);
    expect(moveItem(["a", "b", "c"], 0, -1)).toEqual(["a", "b", "c"]);
    expect(moveItem(["a", "b", "c"], 0, 5)).toEqual(["b", "c", "a"]);
  });

  it("reads a pivot or says how to write one", () => {
    expect(parsePivot(" 16, 31 ")).toEqual([16, 31]);
    expect(parsePivot("")).toBeNull();
    expect(parsePivot("middle")).toContain("X,Y");
  });

  it("makes a sprite's steps: matte, binary alpha, grid, palette, clean-up, bleed", () => {
    const s = spriteSteps({ width: 64, pixels: 32, palette: [[0, 0, 0]], cutout: "u2netp", key: [0, 255, 0] });
    expect(Array.isArray(s) && s.map((x) => x.step)).toEqual([
      "matte", "binary_alpha", "pixelate", "quantize", "clean_orphans", "alpha_bleed",
    ]);
    expect(spriteSteps({ width: 60, pixels: 32, palette: [], cutout: "none", key: [0, 0, 0] })).toContain("multiple");
  });
});

describe("lossPolyline", () => {
  it("spans the box, highest loss at the top, and skips non-finite points", () => {
    const r = lossPolyline(
      [
        { step: 1, loss: 2 },
        { step: 2, loss: Number.NaN },
        { step: 3, loss: 1 },
        { step: 5, loss: 0.5 },
      ],
      100,
      50,
    );
    expect(r).not.toBeNull();
    expect(r?.min).toBe(0.5);
    expect(r?.max).toBe(2);
    expect(r?.path).toEqual([
      [0, 0],
      [50, (1 - 1 / 3) * 50],
      [100, 50],
    ]);
  });
  it("draws nothing from one point", () => {
    expect(lossPolyline([{ step: 1, loss: 1 }], 10, 10)).toBeNull();
  });
});

describe("the skeleton editor", () => {
  it("picks the nearest joint under the pointer and none beyond the radius", () => {
    const joints: ([number, number] | null)[] = [[0.5, 0.2], null, [0.52, 0.21], [0.9, 0.9]];
    expect(hitJoint(joints, 0.515, 0.209, 0.03)).toBe(2);
    expect(hitJoint(joints, 0.2, 0.2, 0.03)).toBe(null);
  });

  it("keeps a dragged joint inside the frame", () => {
    expect(clampJoint(1.3, -0.2)).toEqual([1, 0]);
    expect(clampJoint(0.123456, 0.5)).toEqual([0.1235, 0.5]);
  });

  it("lists a pack's facings in the engine's row order and refuses other direction counts", () => {
    expect(packFacings("topdown", 4)).toEqual(["s", "w", "e", "n"]);
    expect(packFacings("iso", 4)).toEqual(["se", "sw", "ne", "nw"]);
    expect(packFacings("side", 4)).toEqual(["e", "w"]);
    expect(packFacings("topdown", 6)).toBe("6 directions: use 4 or 8");
    expect(POSE_LIMBS).toHaveLength(17);
    expect(POSE_COLORS).toHaveLength(18);
  });
});

describe("clip keyframes", () => {
  it("reads FRAME: prompt lines with an optional @SEED and leaves out the rest", () => {
    expect(parseKeys("8: the fire burning low @7\n  12 : embers\nno frame here\n")).toEqual([
      { frame: 8, prompt: "the fire burning low", seed: 7 },
      { frame: 12, prompt: "embers", seed: null },
    ]);
    expect(parseKeys("")).toEqual([]);
  });
});
