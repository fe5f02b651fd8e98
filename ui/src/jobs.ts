// Every job's events arrive once, over one Tauri channel (`jobs_follow`), and are handed to the
// screens that listen. Nothing polls.
import { Channel } from "@tauri-apps/api/core";
import {
  commands,
  type JobEvent_Deserialize,
  type JobEvent_Serialize as JobEvent,
} from "./bindings";
import { applyEvent, normalizeEvent } from "./logic";

type Listener = (ev: JobEvent) => void;

const latest = new Map<string, JobEvent>();
const listeners = new Set<Listener>();

export function onJobEvent(listener: Listener): void {
  listeners.add(listener);
}

export function lastEvent(id: string): JobEvent | undefined {
  return latest.get(id);
}

/**
 * Hands a just-submitted job's newest event to a screen's listener: a short job can end before
 * the command that started it answers, and its events have then passed the screen by.
 */
export function catchUp(id: string, listener: Listener): void {
  const ev = latest.get(id);
  if (ev) listener(ev);
}

/** One event from the channel: kept as the job's newest, then handed to every listener. */
export function deliver(ev: JobEvent): void {
  applyEvent(latest, ev);
  const merged = latest.get(ev.id) ?? ev;
  for (const l of listeners) l(merged);
}

export async function followJobs(onError: (message: string) => void): Promise<void> {
  const channel = new Channel<JobEvent_Deserialize>();
  channel.onmessage = (raw) => deliver(normalizeEvent(raw));
  const result = await commands.jobsFollow(channel);
  if (result.status === "error") onError(`${result.error.message} (${result.error.kind})`);
}
