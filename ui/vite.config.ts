import { defineConfig } from "vite";

// The studio loads only what it ships: no CDN, no remote fonts, one bundled script.
export default defineConfig({
  clearScreen: false,
  build: {
    outDir: "dist",
    emptyOutDir: true,
    target: "es2022",
    sourcemap: false,
  },
});
