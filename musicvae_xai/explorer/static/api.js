// Talking to the explorer server, and showing what went wrong on the page.

export class ApiError extends Error {
  constructor(message, status = 0, kind = "") {
    super(message);
    this.status = status;
    this.kind = kind;
  }
}

// fetch() with a timeout; throws ApiError carrying the server's {"error": ...} message.
export async function request(path, { method = "GET", json, form, timeoutMs = 20000 } = {}) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  let response;
  try {
    response = await fetch(path, {
      method,
      headers: json !== undefined ? { "Content-Type": "application/json" } : {},
      body: json !== undefined ? JSON.stringify(json) : form,
      signal: controller.signal,
    });
  } catch (e) {
    if (e.name === "AbortError") throw new ApiError(`the explorer server did not answer within ${timeoutMs / 1000} s`, 0, "timeout");
    throw new ApiError(`cannot reach the explorer server (${e.message})`, 0, "network");
  } finally {
    clearTimeout(timer);
  }
  if (!response.ok) {
    let message = `${response.status} ${response.statusText}`;
    let kind = "";
    if ((response.headers.get("Content-Type") || "").includes("json")) {
      try {
        const body = await response.json();
        message = body.error || message;
        kind = body.kind || "";
      } catch (_) { /* keep the status line */ }
    }
    throw new ApiError(message, response.status, kind);
  }
  return response;
}

export const getJSON = async (path, options) => (await request(path, options)).json();
export const postJSON = async (path, json, options = {}) => (await request(path, { ...options, method: "POST", json })).json();

// Error banners, one per key (a repeated error replaces its banner instead of stacking).
const banners = new Map();

export function showError(key, message) {
  const root = document.getElementById("errors");
  let el = banners.get(key);
  if (!el) {
    el = document.createElement("div");
    el.className = "error";
    el.dataset.key = key;
    const text = document.createElement("span");
    const close = document.createElement("button");
    close.textContent = "dismiss";
    close.addEventListener("click", () => clearError(key));
    el.append(text, close);
    root.append(el);
    banners.set(key, el);
  }
  el.firstChild.textContent = message;
}

export function clearError(key) {
  const el = banners.get(key);
  if (el) {
    el.remove();
    banners.delete(key);
  }
}

// Saves a Response body as a file (the server names it in Content-Disposition).
export async function download(response, fallbackName) {
  const blob = await response.blob();
  const match = /filename="([^"]+)"/.exec(response.headers.get("Content-Disposition") || "");
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob);
  a.download = match ? match[1] : fallbackName;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 10000);
}
