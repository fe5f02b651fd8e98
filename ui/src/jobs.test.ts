import { describe, expect, it } from "vitest";
import type { JobEvent_Serialize as JobEvent } from "./bindings";
import { catchUp, deliver, lastEvent } from "./jobs";
import { submittedEvent } from "./logic";

function ev(id: string, over: Partial<JobEvent>): JobEvent {
  return { ...submittedEvent({ id, state: "queued", spec: { type: "sheet" } } as never), ...over };
}

describe("a job that ends before the command that started it answers", () => {
  it("is handed to the screen that submitted it, ended, with its outputs", () => {
    // The order a loaded CI machine produced: the job's events first, the command's answer last.
    deliver(ev("fast", { state: "running" }));
    deliver(ev("fast", { state: "succeeded", outputs: ["a1"] }));
    const seen: JobEvent[] = [];
    catchUp("fast", (e) => seen.push(e));
    expect(seen.map((e) => [e.state, e.outputs])).toEqual([["succeeded", ["a1"]]]);
  });

  it("hands nothing over for a job whose events have not come yet", () => {
    const seen: JobEvent[] = [];
    catchUp("slow", (e) => seen.push(e));
    expect(seen).toEqual([]);
  });

  it("is not set back by a progress event that arrives after its end", () => {
    deliver(ev("late", { state: "succeeded", outputs: ["a2"] }));
    deliver(ev("late", { state: "running" }));
    expect(lastEvent("late")?.state).toBe("succeeded");
  });
});
