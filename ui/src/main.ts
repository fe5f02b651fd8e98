// The studio's shell: tabs, one module per screen, and the job events every screen listens to.
import { byId, setState } from "./dom";
import { followJobs } from "./jobs";
import { initDoctor, loadDoctor } from "./screens/doctor";
import { initGenerate, loadGenerate } from "./screens/generate";
import { initJobs, loadJobs } from "./screens/jobs";
import { initLibrary, loadLibrary } from "./screens/library";
import { initPublish, loadPublish } from "./screens/publish";

const loaders: Record<string, () => Promise<void>> = {
  publish: loadPublish,
  doctor: loadDoctor,
  generate: loadGenerate,
  library: loadLibrary,
  jobs: loadJobs,
};

function show(screen: string): void {
  for (const s of document.querySelectorAll<HTMLElement>(".screen")) {
    s.classList.toggle("active", s.id === screen);
  }
  for (const t of document.querySelectorAll<HTMLElement>(".tab")) {
    t.classList.toggle("active", t.dataset.screen === screen);
  }
  void loaders[screen]?.();
}

window.addEventListener("DOMContentLoaded", () => {
  for (const t of document.querySelectorAll<HTMLElement>(".tab")) {
    t.addEventListener("click", () => show(t.dataset.screen ?? "doctor"));
  }
  initDoctor();
  initGenerate();
  initLibrary();
  initPublish();
  initJobs();
  void followJobs((message) => setState("doctor-state", message, true));
  // The Generate screen lists jobs the worker resumed at start, so it loads its models early.
  void loadGenerate();
  void loadDoctor();
  byId("doctor").dataset.ready = "1";
});
