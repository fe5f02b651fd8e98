// A small typed component kit over the DOM: the studio's screens build their markup with `el`
// and find the static parts of index.html with `byId`. No framework: the generated bindings
// are the types, and every screen is one module.
import type { UiError } from "./bindings";

export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string> = {},
  text?: string,
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

export function byId<T extends HTMLElement>(id: string): T {
  const node = document.getElementById(id);
  if (!node) throw new Error(`missing #${id}`);
  return node as T;
}

export function setState(id: string, text: string, error = false): void {
  const node = byId(id);
  node.textContent = text;
  node.classList.toggle("error", error);
}

export function describe(e: UiError): string {
  return `${e.message} (${e.kind})`;
}
