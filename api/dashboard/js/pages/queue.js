// Queue: upload print files (drag and drop), queue them (copies, priority, target), reorder by
// drag or with the move buttons, hold / release, remove, dispatch now; why each job waits.

import { useEffect, useRef, useState } from "../../vendor/hooks.js";
import { api, can } from "../api.js";
import { farm, on } from "../live.js";
import { duration, html, Loading, Problem, useLoad, when } from "../ui.js";
import { SpoolSwatch } from "./filament.js";

/** A thumbnail fetched with the Authorization header and shown from a blob: URL. */
function Thumbnail({ file }) {
  const [url, setUrl] = useState(null);
  useEffect(() => {
    if (!file.thumbnail_url) return undefined;
    let made = null;
    let live = true;
    api("GET", file.thumbnail_url, undefined, { raw: true })
      .then((r) => r.blob())
      .then((blob) => {
        made = URL.createObjectURL(blob);
        if (live) setUrl(made);
      })
      .catch(() => {});
    return () => {
      live = false;
      if (made) URL.revokeObjectURL(made);
    };
  }, [file.id]);
  if (!url) return html`<div class="thumb none" aria-hidden="true">no preview</div>`;
  return html`<img class="thumb" src=${url} alt=${`preview of ${file.name}`} width="96" height="96" />`;
}

function size(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 ** 2) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / 1024 ** 2).toFixed(1)} MiB`;
}

function FileFacts({ file }) {
  const m = file.metadata || {};
  return html`<dl class="facts file-facts">
    <div><dt>Time</dt><dd>${duration(m.estimated_time_s)}</dd></div>
    <div><dt>Layers</dt><dd>${m.layers ?? "–"}</dd></div>
    <div><dt>Filament</dt><dd>${m.grams != null ? `${Math.round(m.grams)} g` : "–"}</dd></div>
    <div><dt>Size</dt><dd>${size(file.size)}</dd></div>
    ${m.printer_model && html`<div><dt>Sliced for</dt><dd>${m.printer_model}</dd></div>`}
    ${(m.materials || []).some((s) => s.material || s.color) && html`<div><dt>Materials</dt><dd class="materials">${m.materials.map((s) => html`<span title=${`slot ${s.slot}`}><${SpoolSwatch} color=${s.color} label=${`slot ${s.slot} ${s.material || ""} ${s.color || ""}`} /> ${s.material || "?"}</span>`)}</dd></div>`}
  </dl>`;
}

function Upload({ onUploaded }) {
  const [over, setOver] = useState(false);
  const [busy, setBusy] = useState(null);
  const [error, setError] = useState(null);
  const input = useRef(null);
  const send = async (files) => {
    setError(null);
    for (const file of files) {
      setBusy(file.name);
      try {
        const form = new FormData();
        form.append("file", file, file.name);
        onUploaded(await api("POST", "/api/files", form));
      } catch (err) {
        setError(err);
      }
    }
    setBusy(null);
  };
  return html`<div class=${`drop${over ? " over" : ""}`}
      onDragOver=${(e) => { e.preventDefault(); setOver(true); }}
      onDragLeave=${() => setOver(false)}
      onDrop=${(e) => { e.preventDefault(); setOver(false); send([...e.dataTransfer.files]); }}>
    <p>Drop .gcode or .3mf files here, or</p>
    <label class="button" for="upload-input">Choose files…</label>
    <input id="upload-input" ref=${input} class="sr" type="file" multiple accept=".gcode,.3mf,.gcode.3mf"
      onChange=${(e) => { send([...e.currentTarget.files]); e.currentTarget.value = ""; }} />
    ${busy && html`<p role="status">Uploading ${busy}…</p>`}
    <${Problem} error=${error} />
  </div>`;
}

/** Add-job form for one file: copies, priority, target printer or model/tags, hold. */
function AddJob({ file, onDone, onCancel }) {
  const [error, setError] = useState(null);
  const [kind, setKind] = useState("any");
  const printers = [...farm.printers.values()].sort((a, b) => a.name.localeCompare(b.name));
  const models = [...new Set(printers.map((p) => p.model).filter(Boolean))].sort();
  const submit = async (event) => {
    event.preventDefault();
    const form = new FormData(event.currentTarget);
    const body = {
      file_id: file.id,
      copies: Number(form.get("copies")),
      priority: Number(form.get("priority")),
      hold: form.get("hold") === "on",
    };
    if (kind === "printer") body.target = { printer_id: String(form.get("printer")) };
    if (kind === "model") {
      const tags = String(form.get("tags") || "").split(",").map((t) => t.trim()).filter(Boolean);
      body.target = {};
      if (form.get("model")) body.target.model = String(form.get("model"));
      if (tags.length) body.target.tags = tags;
    }
    try {
      onDone(await api("POST", "/api/queue", body));
    } catch (err) {
      setError(err);
    }
  };
  // Default values, not `value`: choosing where to print re-renders the form and Preact would
  // write `value` back, dropping the copies and priority already typed.
  return html`<form class="card form add-job" onSubmit=${submit} aria-labelledby="add-job-title">
    <h2 id="add-job-title">Queue ${file.name}</h2>
    <${Problem} error=${error} />
    <div class="row">
      <div class="field"><label for="job-copies">Copies</label><input id="job-copies" name="copies" type="number" min="1" max="1000" defaultValue="1" required /></div>
      <div class="field"><label for="job-priority">Priority (higher first)</label><input id="job-priority" name="priority" type="number" min="-1000" max="1000" defaultValue="0" required /></div>
      <div class="field"><label for="job-target">Print on</label>
        <select id="job-target" value=${kind} onChange=${(e) => setKind(e.currentTarget.value)}>
          <option value="any">Any printer</option><option value="printer">One printer</option><option value="model">A model and/or tags</option>
        </select></div>
      ${kind === "printer" && html`<div class="field"><label for="job-printer">Printer</label>
        <select id="job-printer" name="printer">${printers.map((p) => html`<option value=${p.id}>${p.name}</option>`)}</select></div>`}
      ${kind === "model" && html`<div class="field"><label for="job-model">Model</label>
        <select id="job-model" name="model"><option value="">Any model</option>${models.map((m) => html`<option value=${m}>${m}</option>`)}</select></div>
        <div class="field"><label for="job-tags">Tags (comma-separated)</label><input id="job-tags" name="tags" /></div>`}
      <label class="check"><input type="checkbox" name="hold" /> Hold</label>
    </div>
    <div class="buttons"><button type="submit" class="primary">Add to queue</button><button type="button" onClick=${onCancel}>Cancel</button></div>
  </form>`;
}

function targetText(target) {
  if (!target || Object.keys(target).length === 0) return "any printer";
  if (target.printer_id) return farm.printers.get(target.printer_id)?.name || target.printer_id;
  return [target.model, target.tags?.length ? `tags ${target.tags.join(", ")}` : null].filter(Boolean).join(", ");
}

const STATE_CLASS = { queued: "s-idle", held: "s-paused", dispatching: "s-preparing", printing: "s-printing", failed: "s-failed" };

function Jobs({ jobs, onChanged }) {
  const [error, setError] = useState(null);
  const [dragged, setDragged] = useState(null);
  const operator = can("operator");
  const act = async (call) => {
    setError(null);
    try {
      await call();
    } catch (err) {
      setError(err);
    }
    onChanged();
  };
  // A new position between the neighbours at the drop place (positions are numbers).
  const moveTo = (job, index) => {
    const others = jobs.filter((j) => j.id !== job.id);
    const before = others[index - 1];
    const after = others[index];
    let position;
    if (before && after) position = (before.position + after.position) / 2;
    else if (before) position = before.position + 1;
    else if (after) position = after.position - 1;
    else return;
    act(() => api("PUT", `/api/queue/${encodeURIComponent(job.id)}`, { position, priority: (after || before).priority }));
  };
  if (jobs.length === 0) return html`<p class="empty card">The queue is empty. Upload a file and queue it.</p>`;
  return html`<${Problem} error=${error} />
    <ol class="jobs">
      ${jobs.map((j, i) => html`<li class=${`card job-row${dragged === j.id ? " dragging" : ""}`} data-job=${j.id}
          draggable=${operator && ["queued", "held"].includes(j.state)}
          onDragStart=${(e) => { setDragged(j.id); e.dataTransfer.effectAllowed = "move"; e.dataTransfer.setData("text/plain", j.id); }}
          onDragEnd=${() => setDragged(null)}
          onDragOver=${(e) => dragged && e.preventDefault()}
          onDrop=${(e) => { e.preventDefault(); const job = jobs.find((x) => x.id === dragged); setDragged(null); if (job && job.id !== j.id) moveTo(job, jobs.filter((x) => x.id !== job.id).findIndex((x) => x.id === j.id)); }}>
        <div class="job-main">
          <span class="handle" aria-hidden="true">${operator ? "⠿" : ""}</span>
          <strong class="file-cell">${j.file_name || j.file_id}</strong>
          <span class=${`badge ${STATE_CLASS[j.state] || ""}`}>${j.state}</span>
          <span class="muted">${j.copies_done ?? 0} of ${j.copies} · priority ${j.priority} · on ${targetText(j.target)}${j.printer_id ? ` · at ${farm.printers.get(j.printer_id)?.name || j.printer_id}` : ""}</span>
        </div>
        ${j.waiting_reason && html`<p class="reason">Waiting: ${j.waiting_reason}</p>`}
        ${j.last_error && html`<p class="reason bad">Last error: ${j.last_error}</p>`}
        ${operator && html`<div class="buttons">
          ${["queued", "held"].includes(j.state) && html`
            <button type="button" disabled=${i === 0} onClick=${() => moveTo(j, i - 1)} aria-label=${`Move ${j.file_name} up`}>↑</button>
            <button type="button" disabled=${i === jobs.length - 1} onClick=${() => moveTo(j, i + 1)} aria-label=${`Move ${j.file_name} down`}>↓</button>
            <button type="button" onClick=${() => act(() => api("PUT", `/api/queue/${encodeURIComponent(j.id)}`, { hold: j.state !== "held" }))}>${j.state === "held" ? "Release" : "Hold"}</button>
            <button type="button" onClick=${() => act(() => api("POST", "/api/queue/dispatch", { job_id: j.id }))}>Dispatch now</button>`}
          ${j.state !== "printing" && html`<button type="button" class="danger" onClick=${() => act(() => api("DELETE", `/api/queue/${encodeURIComponent(j.id)}`))}>Remove</button>`}
        </div>`}
      </li>`)}
    </ol>`;
}

export function QueuePage() {
  const [version, setVersion] = useState(0);
  const [queueing, setQueueing] = useState(null);
  const [done, setDone] = useState(null);
  const jobs = useLoad(() => api("GET", "/api/queue?per_page=200"), [version]);
  const files = useLoad(() => api("GET", "/api/files?per_page=50"), [version]);
  const [dispatchError, setDispatchError] = useState(null);
  const reload = () => setVersion((v) => v + 1);
  const dispatchAll = async () => {
    setDispatchError(null);
    try {
      const result = await api("POST", "/api/queue/dispatch", {});
      setDone(`Dispatched ${result.dispatched.length} job(s).`);
    } catch (err) {
      setDispatchError(err);
    }
    reload();
  };
  useEffect(() => on("queue", reload), []);
  const uploaded = (file) => {
    setDone(`Uploaded ${file.name}.`);
    reload();
  };
  return html`<h1>Queue</h1>
    ${done && html`<p class="ok" role="status">${done}</p>`}
    ${queueing && html`<${AddJob} file=${queueing} onCancel=${() => setQueueing(null)} onDone=${(job) => { setQueueing(null); setDone(`Queued ${job.file_name || "the file"}.`); reload(); }} />`}
    <section aria-labelledby="jobs-title">
      <div class="page-head"><h2 id="jobs-title">Jobs</h2>
        ${can("operator") && html`<button type="button" onClick=${dispatchAll}>Dispatch all now</button>`}</div>
      <${Problem} error=${dispatchError} />
      <${Problem} error=${jobs.error} onRetry=${jobs.reload} />
      ${jobs.loading && !jobs.data && html`<${Loading} what="Loading the queue" />`}
      ${jobs.data && html`<${Jobs} jobs=${jobs.data.items} onChanged=${reload} />`}
    </section>
    <section aria-labelledby="files-title">
      <h2 id="files-title">Files</h2>
      ${can("operator") && html`<${Upload} onUploaded=${uploaded} />`}
      <${Problem} error=${files.error} onRetry=${files.reload} />
      ${files.data && (files.data.items.length === 0
        ? html`<p class="empty card">No files uploaded yet.</p>`
        : html`<ul class="files">${files.data.items.map((f) => html`<li class="card file" data-file=${f.id}>
            <${Thumbnail} file=${f} />
            <div class="file-body">
              <strong class="file-cell">${f.name}</strong>
              <span class="muted">${when(f.created_at)}${f.uploaded_by ? ` · ${f.uploaded_by}` : ""}${f.metadata?.slicer ? ` · ${f.metadata.slicer}` : ""}</span>
              <${FileFacts} file=${f} />
              ${can("operator") && html`<div class="buttons"><button type="button" class="primary" onClick=${() => setQueueing(f)} aria-label=${`Queue ${f.name}`}>Queue…</button></div>`}
            </div>
          </li>`)}</ul>`)}
    </section>`;
}

