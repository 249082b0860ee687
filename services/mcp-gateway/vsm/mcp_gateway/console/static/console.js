// The operations room's own script: JSON forms and action buttons against the REST API,
// the live stream's connection banner, the algedonic pulse and the end of a session.
(function () {
  "use strict";
  const HEADERS = { "Content-Type": "application/json", "X-VSM-Console": "1", "Accept": "application/json" };

  function signIn() {
    const next = location.pathname + location.search;
    location.assign("/console/sign-in?next=" + encodeURIComponent(next));
  }

  function flash(text, failed) {
    const box = document.getElementById("flash");
    if (!box) return;
    const note = document.createElement("div");
    note.textContent = text;
    if (failed) note.className = "failed";
    box.appendChild(note);
    setTimeout(() => note.remove(), 6000);
  }

  // Open `url` and say `done` there: an action that moves to another page keeps its word.
  const CARRIED = "vsm-console-flash";
  function go(url, done) {
    try { sessionStorage.setItem(CARRIED, done); } catch (e) { /* storage off: no word */ }
    location.assign(url);
  }

  function sayCarried() {
    let said = null;
    try { said = sessionStorage.getItem(CARRIED); sessionStorage.removeItem(CARRIED); } catch (e) { return; }
    if (said) flash(said);
  }

  // A field's value as the REST API takes it; undefined leaves it out (the default applies).
  function valueOf(input) {
    const kind = input.dataset.kind || "text";
    if (kind === "boolean") return input.type === "checkbox" ? input.checked : input.value === "" ? undefined : input.value === "true";
    const raw = input.value.trim();
    if (raw === "") return undefined;
    if (kind === "integer" || kind === "number") {
      const n = Number(raw);
      return Number.isNaN(n) ? raw : n;
    }
    if (kind === "json") {
      try { return JSON.parse(raw); } catch (e) { throw { field: input.name, message: "not valid JSON: " + e.message }; }
    }
    return raw;
  }

  function bodyOf(form) {
    const body = {};
    for (const input of form.querySelectorAll("[name]")) {
      if (input.disabled || input.dataset.skip !== undefined) continue;
      const value = valueOf(input);
      if (value === undefined) continue;
      const path = input.name.split(".");
      let here = body;
      for (const part of path.slice(0, -1)) here = here[part] = here[part] || {};
      here[path[path.length - 1]] = value;
    }
    return body;
  }

  function clearErrors(form) {
    for (const slot of form.querySelectorAll("[data-error-for]")) slot.textContent = "";
    for (const field of form.querySelectorAll(".field.invalid")) field.classList.remove("invalid");
    for (const input of form.querySelectorAll("[aria-invalid]")) input.removeAttribute("aria-invalid");
  }

  // Each problem the server named, next to its field; what fits no field goes to the output.
  function showErrors(form, problems) {
    const unplaced = [];
    for (const p of problems) {
      const name = String(p.field || "").replace(/^body\./, "");
      const slot = slotFor(form, name);
      if (!slot) { unplaced.push((name ? name + ": " : "") + p.message); continue; }
      slot.textContent = (slot.textContent ? slot.textContent + "; " : "") + p.message;
      slot.closest(".field")?.classList.add("invalid");
      form.querySelector('[name="' + CSS.escape(slot.dataset.errorFor) + '"]')?.setAttribute("aria-invalid", "true");
    }
    return unplaced;
  }

  // The slot of the field itself, or of the nearest field that holds it (`data.values.0`
  // goes next to `data.values`).
  function slotFor(form, name) {
    const parts = name.split(".");
    for (let end = parts.length; end > 0; end--) {
      const here = parts.slice(0, end).join(".");
      const slot = form.querySelector('[data-error-for="' + CSS.escape(here) + '"]');
      if (slot) return slot;
    }
    return null;
  }

  // An agent's answer: its result, or its error with each field it names.
  function commandOutcome(answer) {
    if (answer.status === "ok") {
      return { ok: true, text: answer.status + " in " + answer.processing_time_ms + " ms\n" + JSON.stringify(answer.result, null, 2) };
    }
    const error = answer.error || {};
    return { ok: false, error: { error: error.code, message: error.message, details: error.details || {} } };
  }

  function problemsOf(answer) {
    const listed = [...(answer.fields || [])];
    const details = answer.details || {};
    for (const e of details.errors || []) listed.push(e);
    if (details.field && !listed.length) listed.push({ field: details.field, message: answer.message });
    return listed;
  }

  async function send(method, url, body) {
    const response = await fetch(url, {
      method, headers: HEADERS, credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    let answer = {};
    try { answer = await response.json(); } catch (e) { answer = {}; }
    if (response.status === 401 && answer.error === "signed_out") { signIn(); throw new Error("signed out"); }
    return { ok: response.ok, status: response.status, answer };
  }

  async function submit(form) {
    const output = form.querySelector("output.result");
    const button = form.querySelector("button[type=submit]");
    clearErrors(form);
    if (output) { output.textContent = ""; output.classList.remove("failed"); }
    let body;
    try { body = bodyOf(form); } catch (bad) { showErrors(form, [bad]); return; }
    if (button) button.disabled = true;
    try {
      let { ok, answer } = await send(form.dataset.method || "POST", form.getAttribute("action"), body);
      if (ok && form.dataset.command !== undefined) {
        const outcome = commandOutcome(answer);
        if (outcome.ok) { if (output) output.textContent = outcome.text; flash(form.dataset.done || "Done"); return; }
        ok = false; answer = outcome.error;
      }
      if (ok) {
        if (form.dataset.next) { go(answer.next || form.dataset.next.replace("{id}", encodeURIComponent(answer.agent_id || "")), form.dataset.done || "Done"); return; }
        if (output) output.textContent = JSON.stringify(answer, null, 2);
        flash(form.dataset.done || "Done");
        return;
      }
      const rest = showErrors(form, problemsOf(answer));
      const text = (answer.message || answer.error || "refused") + (rest.length ? "\n" + rest.join("\n") : "");
      if (output) { output.textContent = text; output.classList.add("failed"); } else flash(text, true);
    } catch (error) {
      if (error.message !== "signed out") flash("No answer: " + error.message, true);
    } finally {
      if (button) button.disabled = false;
    }
  }

  async function act(button) {
    if (button.dataset.confirm && !confirm(button.dataset.confirm)) return;
    button.disabled = true;
    const target = button.dataset.output ? document.querySelector(button.dataset.output) : null;
    try {
      const body = button.dataset.body ? JSON.parse(button.dataset.body) : undefined;
      const { ok, answer } = await send(button.dataset.method || "POST", button.dataset.url, body);
      const text = ok ? (button.dataset.done || "Done") : (answer.message || answer.error || "refused");
      if (target) { target.textContent = ok ? JSON.stringify(answer, null, 2) : text; target.classList.toggle("failed", !ok); }
      if (ok && button.dataset.next) { go(button.dataset.next, text); return; }
      flash(text, !ok);
    } catch (error) {
      if (error.message !== "signed out") flash("No answer: " + error.message, true);
    } finally {
      button.disabled = false;
    }
  }

  sayCarried();
  document.addEventListener("submit", (event) => {
    const form = event.target.closest("form[data-json]");
    if (!form) return;
    event.preventDefault();
    submit(form);
  });
  document.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-url]");
    if (!button) return;
    event.preventDefault();
    act(button);
  });

  // The live stream: a banner while it is down (htmx reconnects it), the pulse, sign-out.
  function connection(lost) {
    const banner = document.getElementById("connection");
    if (banner) banner.hidden = !lost;
  }
  document.addEventListener("htmx:sseError", () => connection(true));
  document.addEventListener("htmx:sseOpen", () => connection(false));
  document.addEventListener("htmx:sseBeforeMessage", (event) => {
    const kind = event.detail && event.detail.type;
    if (kind === "signed-out") { event.preventDefault(); signIn(); return; }
    if (kind === "signal") {
      event.preventDefault();
      const pulse = document.querySelector(".channel .pulse");
      if (!pulse) return;
      pulse.classList.remove("travel", "pain", "pleasure");
      void pulse.offsetWidth; // restart the animation
      pulse.classList.add(event.detail.data === "pleasure" ? "pleasure" : "pain", "travel");
      const said = document.getElementById("signal-said");
      if (said) said.textContent = event.detail.data + " signal to S5";
    }
  });
})();
