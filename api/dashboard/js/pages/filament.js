// Filament: spools with filters, add / edit / assign to a tray, low stock, a spool's ledger,
// consumption charts. Operators edit; viewers read.

import { useEffect, useState } from "../../vendor/hooks.js";
import { api, can } from "../api.js";
import { farm } from "../live.js";
import { BarList, bodyEnum, cssColor, html, Loading, Problem, useLoad, when } from "../ui.js";
import { Pager } from "./notifications.js";

const PER_PAGE = 50;

/** The materials the API accepts, from its OpenAPI document. */
function useMaterials() {
  const [list, setList] = useState([]);
  useEffect(() => {
    bodyEnum("/api/filaments", "post", "material").then(setList, () => setList([]));
  }, []);
  return list;
}

/** A printer-wide tray number as people say it: "AMS 2 slot 1", "external spool". */
export function trayLabel(tray) {
  if (tray === 254 || tray === 255) return "external spool";
  if (tray >= 128) return `AMS HT ${tray - 127}`;
  return `AMS ${Math.floor(tray / 4) + 1} slot ${(tray % 4) + 1}`;
}

export function SpoolSwatch({ color, label }) {
  const fill = cssColor(String(color || "").replace(/^#/, ""));
  return html`<svg class="swatch" viewBox="0 0 20 20" role="img" aria-label=${label || `colour ${color}`}>
    ${fill ? html`<rect x="1" y="1" width="18" height="18" rx="4" fill=${fill} class="colour" />` : html`<rect x="1" y="1" width="18" height="18" rx="4" class="no-colour" />`}
  </svg>`;
}

function number(form, name) {
  const raw = String(form.get(name) ?? "").trim();
  return raw === "" ? null : Number(raw);
}

function text(form, name) {
  const raw = String(form.get(name) ?? "").trim();
  return raw === "" ? null : raw;
}

/** Create (no spool) or edit form; sends only what the API accepts. */
function SpoolForm({ spool, onDone, onCancel }) {
  const MATERIALS = useMaterials();
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const printers = [...farm.printers.values()].sort((a, b) => a.name.localeCompare(b.name));
  const submit = async (event) => {
    event.preventDefault();
    const form = new FormData(event.currentTarget);
    const body = {
      material: form.get("material"),
      color: String(form.get("color")).toUpperCase(),
      brand: text(form, "brand"),
      name: text(form, "name"),
      weight_total_g: number(form, "weight_total_g"),
      weight_remaining_g: number(form, "weight_remaining_g"),
      low_threshold_g: number(form, "low_threshold_g"),
      price_per_kg: number(form, "price_per_kg"),
      location: text(form, "location"),
      notes: text(form, "notes"),
    };
    for (const k of ["weight_total_g", "weight_remaining_g", "low_threshold_g"]) if (body[k] === null) delete body[k];
    if (spool) {
      body.archived = form.get("archived") === "on";
      const printer = String(form.get("printer") || "");
      const tray = number(form, "tray");
      const now = spool.assigned_to;
      const wanted = printer ? { printer_id: printer, tray: tray ?? 0 } : null;
      if (JSON.stringify(wanted) !== JSON.stringify(now)) body.assigned_to = wanted;
      // An unchanged remaining weight is not a correction: leave the ledger alone.
      if (body.weight_remaining_g === spool.weight_remaining_g) delete body.weight_remaining_g;
    }
    setBusy(true);
    setError(null);
    try {
      const saved = spool
        ? await api("PUT", `/api/filaments/${encodeURIComponent(spool.id)}`, body)
        : await api("POST", "/api/filaments", body);
      onDone(saved);
    } catch (err) {
      setError(err);
      setBusy(false);
    }
  };
  const s = spool || {};
  const id = (name) => `sp-${name}`;
  // Default values, not `value`: Preact would write `value` back on every re-render (busy, an
  // error) and drop what the user typed.
  return html`<form class="card form spool-form" onSubmit=${submit} aria-labelledby="spool-form-title">
    <h2 id="spool-form-title">${spool ? `Edit spool ${spool.name || spool.material}` : "Add a spool"}</h2>
    <${Problem} error=${error} />
    <div class="row">
      <div class="field"><label for=${id("material")}>Material</label>
        <select id=${id("material")} name="material">${MATERIALS.map((m) => html`<option value=${m} defaultSelected=${m === (s.material || "PLA")}>${m}</option>`)}</select></div>
      <div class="field"><label for=${id("color")}>Colour</label><input id=${id("color")} name="color" type="color" defaultValue=${(s.color || "#FFFFFF").toLowerCase()} /></div>
      <div class="field"><label for=${id("brand")}>Brand</label><input id=${id("brand")} name="brand" maxlength="100" defaultValue=${s.brand || ""} /></div>
      <div class="field"><label for=${id("name")}>Name</label><input id=${id("name")} name="name" maxlength="100" defaultValue=${s.name || ""} /></div>
    </div>
    <div class="row">
      <div class="field"><label for=${id("total")}>Net weight (g)</label><input id=${id("total")} name="weight_total_g" type="number" min="0" step="any" defaultValue=${s.weight_total_g ?? 1000} /></div>
      <div class="field"><label for=${id("remaining")}>Remaining (g)</label><input id=${id("remaining")} name="weight_remaining_g" type="number" min="0" step="any" defaultValue=${s.weight_remaining_g ?? ""} placeholder="= net weight" /></div>
      <div class="field"><label for=${id("low")}>Low below (g)</label><input id=${id("low")} name="low_threshold_g" type="number" min="0" step="any" defaultValue=${s.low_threshold_g ?? ""} /></div>
      <div class="field"><label for=${id("price")}>Price per kg</label><input id=${id("price")} name="price_per_kg" type="number" min="0" step="any" defaultValue=${s.price_per_kg ?? ""} /></div>
      <div class="field"><label for=${id("location")}>Location</label><input id=${id("location")} name="location" maxlength="100" defaultValue=${s.location || ""} /></div>
    </div>
    ${spool && html`<div class="row">
      <div class="field"><label for=${id("printer")}>On printer</label>
        <select id=${id("printer")} name="printer">
          <option value="" defaultSelected=${!s.assigned_to}>Not on a printer</option>
          ${printers.map((p) => html`<option value=${p.id} defaultSelected=${p.id === s.assigned_to?.printer_id}>${p.name}</option>`)}
        </select></div>
      <div class="field"><label for=${id("tray")}>Tray (0 to 15 AMS, 254 external)</label><input id=${id("tray")} name="tray" type="number" min="0" max="254" defaultValue=${s.assigned_to?.tray ?? 0} /></div>
      <label class="check"><input type="checkbox" name="archived" defaultChecked=${!!s.archived} /> Archived</label>
    </div>`}
    <div class="field"><label for=${id("notes")}>Notes</label><textarea id=${id("notes")} name="notes" rows="2" maxlength="4000">${s.notes || ""}</textarea></div>
    <div class="buttons">
      <button type="submit" class="primary" disabled=${busy}>${spool ? "Save spool" : "Add spool"}</button>
      <button type="button" onClick=${onCancel}>Cancel</button>
    </div>
  </form>`;
}

function Ledger({ spool, onClose }) {
  const [page, setPage] = useState(1);
  const ledger = useLoad(() => api("GET", `/api/filaments/${encodeURIComponent(spool.id)}/ledger?page=${page}&per_page=20`), [spool.id, page]);
  const printerName = (id) => (id ? farm.printers.get(id)?.name || id : "–");
  return html`<section class="card ledger" aria-labelledby="ledger-title">
    <div class="page-head"><h2 id="ledger-title">Ledger of ${spool.name || spool.material} (${spool.color})</h2><button type="button" onClick=${onClose}>Close</button></div>
    <${Problem} error=${ledger.error} onRetry=${ledger.reload} />
    ${ledger.loading && !ledger.data && html`<${Loading} what="Loading the ledger" />`}
    ${ledger.data && html`<div class="table-wrap"><table>
      <thead><tr><th scope="col">When</th><th scope="col">Kind</th><th scope="col">Change (g)</th><th scope="col">Printer</th><th scope="col">Tray</th><th scope="col">Note</th></tr></thead>
      <tbody>${ledger.data.items.map((e) => html`<tr>
        <td>${when(e.created_at)}</td><td>${e.kind}</td><td class="num">${e.delta_g > 0 ? "+" : ""}${Number(e.delta_g).toFixed(1)}</td>
        <td>${printerName(e.printer_id)}</td><td>${e.tray != null ? trayLabel(e.tray) : "–"}</td><td>${e.note || ""}</td></tr>`)}</tbody>
    </table></div>
    <p class="muted">Sum of all entries: ${ledger.data.sum_g} g (the spool's remaining weight).</p>
    <${Pager} page=${page} perPage=${20} total=${ledger.data.total} onPage=${setPage} />`}
  </section>`;
}

function Stats({ version }) {
  const stats = useLoad(() => api("GET", "/api/filaments/stats"), [version]);
  if (stats.error) return html`<${Problem} error=${stats.error} onRetry=${stats.reload} />`;
  if (!stats.data) return null;
  const c = stats.data.consumption;
  const printerName = (id) => (id ? farm.printers.get(id)?.name || id : "unknown printer");
  return html`<div class="detail">
    <section class="card" aria-labelledby="inv-title">
      <h2 id="inv-title">Stock by material</h2>
      ${stats.data.inventory.length === 0 ? html`<p class="muted">No spools in stock.</p>` : html`<div class="table-wrap"><table>
        <thead><tr><th scope="col">Material</th><th scope="col">Spools</th><th scope="col">Grams</th><th scope="col">Use per day</th><th scope="col">Days left</th></tr></thead>
        <tbody>${stats.data.inventory.map((r) => html`<tr><th scope="row">${r.material}</th><td class="num">${r.spools}</td><td class="num">${Math.round(r.grams)}</td><td class="num">${r.grams_per_day}</td><td class="num">${r.days_left ?? "–"}</td></tr>`)}</tbody>
      </table></div>`}
    </section>
    <section class="card" aria-labelledby="use-title">
      <h2 id="use-title">Used in the last 30 days</h2>
      <${BarList} title="grams by material" unit="g" items=${c.by_material.map((r) => ({ label: r.material, value: r.grams }))} />
      <${BarList} title="grams by printer" unit="g" items=${c.by_printer.map((r) => ({ label: printerName(r.printer_id), value: r.grams }))} />
    </section>
  </div>`;
}

export function FilamentPage() {
  const MATERIALS = useMaterials();
  const [filters, setFilters] = useState({ material: "", archived: false, assigned: "" });
  const [page, setPage] = useState(1);
  const [editing, setEditing] = useState(null); // null | "new" | spool
  const [ledgerOf, setLedgerOf] = useState(null);
  const [version, setVersion] = useState(0);
  const [done, setDone] = useState(null);
  const query = new URLSearchParams({ page: String(page), per_page: String(PER_PAGE), archived: String(filters.archived) });
  if (filters.material) query.set("material", filters.material);
  if (filters.assigned) query.set("assigned", filters.assigned);
  const spools = useLoad(() => api("GET", `/api/filaments?${query}`), [query.toString(), version]);
  const set = (key) => (e) => {
    setPage(1);
    setFilters((f) => ({ ...f, [key]: e.currentTarget.type === "checkbox" ? e.currentTarget.checked : e.currentTarget.value }));
  };
  const saved = (spool) => {
    setEditing(null);
    setDone(`Spool ${spool.name || spool.material} saved.`);
    setVersion((v) => v + 1);
  };
  const printerName = (id) => farm.printers.get(id)?.name || id;
  return html`<div class="page-head">
      <h1>Filament</h1>
      ${can("operator") && !editing && html`<button type="button" class="primary" onClick=${() => { setDone(null); setEditing("new"); }}>Add spool</button>`}
    </div>
    ${done && html`<p class="ok" role="status">${done}</p>`}
    ${editing && html`<${SpoolForm} key=${editing === "new" ? "new" : editing.id} spool=${editing === "new" ? null : editing} onDone=${saved} onCancel=${() => setEditing(null)} />`}
    ${ledgerOf && html`<${Ledger} spool=${ledgerOf} onClose=${() => setLedgerOf(null)} />`}
    <form class="filters" onSubmit=${(e) => e.preventDefault()} aria-label="spool filters">
      <div class="field"><label for="fl-material">Material</label>
        <select id="fl-material" value=${filters.material} onChange=${set("material")}><option value="">All materials</option>${MATERIALS.map((m) => html`<option value=${m}>${m}</option>`)}</select></div>
      <div class="field"><label for="fl-assigned">On a printer</label>
        <select id="fl-assigned" value=${filters.assigned} onChange=${set("assigned")}><option value="">Either</option><option value="true">On a tray</option><option value="false">Not on a tray</option></select></div>
      <label class="check"><input type="checkbox" checked=${filters.archived} onChange=${set("archived")} /> Archived spools</label>
    </form>
    <${Problem} error=${spools.error} onRetry=${spools.reload} />
    ${spools.loading && !spools.data && html`<${Loading} what="Loading spools" />`}
    ${spools.data && (spools.data.items.length === 0
      ? html`<p class="empty card">No spools${filters.material || filters.assigned ? " match these filters" : " yet"}.</p>`
      : html`<div class="table-wrap"><table class="spools">
          <thead><tr><th scope="col">Spool</th><th scope="col">Material</th><th scope="col">Remaining</th><th scope="col">Location</th><th scope="col">On printer</th><th scope="col"><span class="sr">Actions</span></th></tr></thead>
          <tbody>${spools.data.items.map((s) => {
            const low = s.weight_remaining_g < s.low_threshold_g;
            return html`<tr class=${low ? "low" : ""} data-spool=${s.id}>
              <th scope="row"><span class="spool-name"><${SpoolSwatch} color=${s.color} label=${`colour ${s.color}`} /> ${s.name || s.brand || "unnamed"}${s.brand && s.name ? html` <span class="muted">${s.brand}</span>` : ""}</span></th>
              <td>${s.material}</td>
              <td class="num"><meter min="0" max=${s.weight_total_g || 1} low=${s.low_threshold_g} optimum=${s.weight_total_g} value=${s.weight_remaining_g} aria-hidden="true"></meter>
                ${Math.round(s.weight_remaining_g)} / ${Math.round(s.weight_total_g)} g ${low ? html`<span class="badge sev-warning">low stock</span>` : ""}</td>
              <td>${s.location || "–"}</td>
              <td>${s.assigned_to ? `${printerName(s.assigned_to.printer_id)} · ${trayLabel(s.assigned_to.tray)}` : "–"}</td>
              <td class="actions">
                ${can("operator") && html`<button type="button" onClick=${() => { setDone(null); setEditing(s); }} aria-label=${`Edit ${s.name || s.material}`}>Edit</button>`}
                <button type="button" onClick=${() => setLedgerOf(s)} aria-label=${`Ledger of ${s.name || s.material}`}>Ledger</button>
              </td>
            </tr>`;
          })}</tbody>
        </table></div>
        <${Pager} page=${page} perPage=${PER_PAGE} total=${spools.data.total} onPage=${setPage} />`)}
    <${Stats} version=${version} />`;
}

/** The spools on a printer's trays, and (operators) putting a spool on a tray. */
export function PrinterSpools({ id, status }) {
  const [version, setVersion] = useState(0);
  const [error, setError] = useState(null);
  const trays = useLoad(() => api("GET", `/api/printers/${encodeURIComponent(id)}/trays`), [id, version]);
  const spools = useLoad(() => (can("operator") ? api("GET", "/api/filaments?archived=false&per_page=500") : Promise.resolve(null)), [version]);
  const onTray = new Map((trays.data?.items || []).map((t) => [t.tray, t]));
  const reported = (status?.ams || []).flatMap((u) => u.trays.map((t) => t.slot));
  const numbers = [...new Set([...reported, ...onTray.keys()])].sort((a, b) => a - b);
  const assign = async (tray, spoolId) => {
    setError(null);
    try {
      await api("PUT", `/api/printers/${encodeURIComponent(id)}/trays/${tray}`, { spool_id: spoolId || null });
      setVersion((v) => v + 1);
    } catch (err) {
      setError(err);
    }
  };
  if (trays.error) return html`<${Problem} error=${trays.error} onRetry=${trays.reload} />`;
  if (!trays.data) return html`<${Loading} what="Loading spools" />`;
  if (numbers.length === 0) return html`<p class="muted">No trays reported and no spool assigned.</p>`;
  return html`<${Problem} error=${error} />
    <ul class="tray-spools">
      ${numbers.map((n) => {
        const t = onTray.get(n);
        return html`<li>
          <span class="tray-name">${trayLabel(n)}</span>
          ${t ? html`<span class="spool-name"><${SpoolSwatch} color=${t.color} label=${`colour ${t.color}`} /> ${t.material}, ${Math.round(t.remaining_g)} g left</span>` : html`<span class="muted">no spool assigned</span>`}
          ${spools.data && html`<label class="sr" for=${`assign-${n}`}>Spool on ${trayLabel(n)}</label>
            <select id=${`assign-${n}`} value=${t?.spool_id || ""} onChange=${(e) => assign(n, e.currentTarget.value)}>
              <option value="">No spool</option>
              ${spools.data.items.map((s) => html`<option value=${s.id}>${`${s.name || s.brand || s.material} · ${s.material} ${s.color} · ${Math.round(s.weight_remaining_g)} g`}</option>`)}
            </select>`}
        </li>`;
      })}
    </ul>`;
}
