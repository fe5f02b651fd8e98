// The studio's shell: tabs, one module per screen, and the job events every screen listens to.
import { byId, setState } from "./dom";
import { followJobs } from "./jobs";
import { initCharacter, loadCharacter } from "./screens/character";
import { initClip, loadClip } from "./screens/clip";
import { initDoctor, loadDoctor } from "./screens/doctor";
import { initDrop } from "./screens/drop";
import { initFarm, loadFarm } from "./screens/farm";
import { initGenerate, loadGenerate, useLora } from "./screens/generate";
import { initJobs, loadJobs } from "./screens/jobs";
import { initLibrary, loadLibrary } from "./screens/library";
import { initPublish, loadPublish } from "./screens/publish";
import { initTrain, loadTrain } from "./screens/train";

const loaders: Record<string, () => Promise<void>> = {
  publish: loadPublish,
  doctor: loadDoctor,
  generate: loadGenerate,
  library: loadLibrary,
  jobs: loadJobs,
  train: loadTrain,
  character: loadCharacter,
  clip: loadClip,
  farm: loadFarm,
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
  initTrain();
  initCharacter();
  initClip();
  initDrop();
  initFarm();
  // The Train screen's "Use this LoRA": to Generate with it chosen.
  document.addEventListener("mintframe:use-lora", (ev) => {
    show("generate");
    void useLora((ev as CustomEvent<string>).detail);
  });
  void followJobs((message) => setState("doctor-state", message, true));
  // The Generate screen lists jobs the worker resumed at start, so it loads its models early.
  void loadGenerate();
  void loadDoctor();
  byId("doctor").dataset.ready = "1";
});
