"""The labelling page: one HTML document, inline CSS and script, talking only to /api/*.

Keyboard first: a digit labels the selection (or, with nothing selected, the focused frame)
and moves on; arrows move the focus; space selects; shift-click selects a range; ``a``
selects every frame shown; ``s`` skips; ``u`` (or Ctrl-Z) undoes; Esc clears the selection.
Filters (camera, guess, highest confidence, hide labelled) and the sort (camera then time, or most
uncertain first) only change what is shown. ``#f-<id>`` in the URL opens on that frame with
the filters cleared: the training report links its worst mistakes here.
"""

from __future__ import annotations

import html

_CSS = """
body { font-family: system-ui, sans-serif; margin: 0; background: #f4f5f7; color: #1d2330; }
header { position: sticky; top: 0; background: #fff; padding: 8px 16px; box-shadow: 0 1px 3px rgba(0,0,0,.15); z-index: 2; }
header .row { display: flex; flex-wrap: wrap; gap: 10px; align-items: center; margin: 4px 0; }
#progress { font-weight: 600; }
.keys { color: #5b6475; font-size: 12px; }
#grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(200px, 1fr)); gap: 10px; padding: 12px 16px; }
.card { background: #fff; border: 3px solid transparent; border-radius: 6px; padding: 4px; cursor: pointer; user-select: none; }
.card img { width: 100%; aspect-ratio: 16 / 9; object-fit: cover; border-radius: 3px; background: #ccd; }
.card .meta { font-size: 12px; display: flex; justify-content: space-between; }
.card.focused { border-color: #2b7bd6; }
.card.selected { background: #dbe9fb; }
.card.labelled { opacity: .75; }
.badge { font-weight: 700; }
.badge.skip { color: #8a8f99; }
#error { color: #b3261e; }
"""

_SCRIPT = r"""
let LABELS = [], FRAMES = [], VIEW = [], focusId = null, anchorId = null;
const selected = new Set();
const $ = (id) => document.getElementById(id);

async function load() {
  const state = await (await fetch('/api/set')).json();
  LABELS = state.labels; FRAMES = state.frames;
  showProgress(state.progress);
}
function showProgress(p) {
  $('progress').textContent = `${p.labelled} / ${p.total} labelled, ${p.skipped} skipped`;
}
function setupControls() {
  const cameras = [...new Set(FRAMES.map(f => f.camera))].sort();
  for (const c of cameras) $('camera').add(new Option(c, c));
  for (const l of LABELS) { $('guess').add(new Option(l, l)); $('bulk').add(new Option(l, l)); }
  const buttons = $('label-buttons');
  LABELS.forEach((l, i) => {
    const b = document.createElement('button');
    b.textContent = `${i + 1} ${l}`; b.dataset.label = l; b.className = 'label-button';
    b.onclick = () => labelTargets(l);
    buttons.appendChild(b);
  });
  for (const id of ['camera', 'guess', 'maxconf', 'sort', 'hide-done']) $(id).onchange = render;
  $('label-selected').onclick = () => labelTargets($('bulk').value, true);
  $('skip').onclick = skipTargets; $('undo').onclick = undo;
}
function computeView() {
  const camera = $('camera').value, guess = $('guess').value, hide = $('hide-done').checked;
  const maxconf = $('maxconf').value === '' ? null : parseFloat($('maxconf').value);
  let view = FRAMES.filter(f => (!camera || f.camera === camera) && (!guess || f.guess === guess)
    && (maxconf === null || (f.confidence !== null && f.confidence <= maxconf))
    && (!hide || (!f.label && !f.skipped)) );
  if ($('sort').value === 'uncertainty') {
    const m = (f) => f.margin === null ? Infinity : f.margin;
    view = view.slice().sort((a, b) => m(a) - m(b) || a.id.localeCompare(b.id));
  }
  return view;
}
function render() {
  VIEW = computeView();
  const grid = $('grid'); grid.textContent = '';
  for (const f of VIEW) {
    const card = document.createElement('div');
    card.className = 'card'; card.id = 'f-' + f.id; card.dataset.id = f.id;
    if (f.label) card.classList.add('labelled');
    if (selected.has(f.id)) card.classList.add('selected');
    if (f.id === focusId) card.classList.add('focused');
    const conf = f.confidence === null ? '' : f.confidence.toFixed(2);
    const decision = f.label ? `<span class="badge">${esc(f.label)}</span>`
      : (f.skipped ? '<span class="badge skip">skipped</span>' : '<span class="badge"></span>');
    card.innerHTML = `<img src="/${f.thumbnail}" alt="${esc(f.key)}" loading="lazy">
      <div class="meta"><span class="guess">${esc(f.guess || '?')} ${conf}</span>${decision}</div>
      <div class="meta"><small>${esc(f.camera)}</small><small>${esc(f.captured_at.slice(11, 19))}</small></div>`;
    card.onclick = (event) => clickCard(f.id, event);
    grid.appendChild(card);
  }
  $('shown').textContent = `${VIEW.length} shown, ${selected.size} selected`;
  if (!VIEW.some(f => f.id === focusId) && VIEW.length) setFocus(VIEW[0].id, false);
}
function esc(s) { return String(s).replace(/[&<>"]/g, c => ({'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;'}[c])); }
function setFocus(id, scroll = true) {
  document.querySelectorAll('.card.focused').forEach(c => c.classList.remove('focused'));
  focusId = id;
  const card = $('f-' + id);
  if (card) { card.classList.add('focused'); if (scroll) card.scrollIntoView({block: 'nearest'}); }
}
function clickCard(id, event) {
  if (event.shiftKey && anchorId !== null) {
    const ids = VIEW.map(f => f.id), a = ids.indexOf(anchorId), b = ids.indexOf(id);
    for (let i = Math.min(a, b); i <= Math.max(a, b); i++) selected.add(ids[i]);
  } else if (event.ctrlKey || event.metaKey) {
    selected.has(id) ? selected.delete(id) : selected.add(id); anchorId = id;
  } else { anchorId = id; }
  focusId = id; render();
}
function targets() { return selected.size ? [...selected] : (focusId ? [focusId] : []); }
function nextAfter(ids) {
  const order = VIEW.map(f => f.id), last = Math.max(...ids.map(i => order.indexOf(i)));
  return order[Math.min(last + 1, order.length - 1)];
}
async function post(path, body) {
  const response = await fetch(path, {method: 'POST', headers: {'content-type': 'application/json'}, body: JSON.stringify(body)});
  const answer = await response.json();
  $('error').textContent = response.ok ? '' : answer.error;
  return response.ok ? answer : null;
}
async function act(path, body, ids) {
  const next = ids.length ? nextAfter(ids) : focusId;
  if (!await post(path, body)) return;
  selected.clear(); await load(); focusId = next; render(); setFocus(focusId);
  $('status').textContent = `${path.slice(5)} ${ids.length} frame(s)`;
}
async function labelTargets(label, onlySelected = false) {
  const ids = onlySelected ? [...selected] : targets();
  if (ids.length) await act('/api/label', {ids, label}, ids);
}
async function skipTargets() { const ids = targets(); if (ids.length) await act('/api/skip', {ids}, ids); }
async function undo() {
  const answer = await post('/api/undo', {});
  if (!answer) return;
  await load();
  if (answer.undone) focusId = answer.undone.ids[0];
  render(); setFocus(focusId);
  $('status').textContent = answer.undone ? `undid ${answer.undone.action} of ${answer.undone.ids.length} frame(s)` : 'nothing to undo';
}
function columns() {
  const cards = [...document.querySelectorAll('.card')];
  if (!cards.length) return 1;
  const top = cards[0].offsetTop;
  return Math.max(1, cards.filter(c => c.offsetTop === top).length);
}
function move(step) {
  const ids = VIEW.map(f => f.id), at = Math.max(0, ids.indexOf(focusId));
  const to = Math.min(ids.length - 1, Math.max(0, at + step));
  if (ids.length) setFocus(ids[to]);
}
document.addEventListener('keydown', (event) => {
  if (['INPUT', 'SELECT'].includes(event.target.tagName)) return;
  const k = event.key;
  if (/^[1-9]$/.test(k) && Number(k) <= LABELS.length) { labelTargets(LABELS[Number(k) - 1]); }
  else if (k === 'ArrowRight') move(1);
  else if (k === 'ArrowLeft') move(-1);
  else if (k === 'ArrowDown') move(columns());
  else if (k === 'ArrowUp') move(-columns());
  else if (k === ' ') {
    if (focusId) { selected.has(focusId) ? selected.delete(focusId) : selected.add(focusId); anchorId = focusId; render(); setFocus(focusId); }
  }
  else if (k === 's') skipTargets();
  else if (k === 'u' || (k === 'z' && (event.ctrlKey || event.metaKey))) undo();
  else if (k === 'a') { VIEW.forEach(f => selected.add(f.id)); render(); }
  else if (k === 'Escape') { selected.clear(); render(); }
  else return;
  event.preventDefault();
});
(async () => {
  await load(); setupControls();
  const wanted = location.hash.startsWith('#f-') ? location.hash.slice(3) : null;
  render();
  if (wanted && FRAMES.some(f => f.id === wanted)) setFocus(wanted);
  document.body.dataset.ready = '1';
})();
"""


def page_html(title: str) -> str:
    name = html.escape(title)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>camsort label: {name}</title><style>{_CSS}</style></head>
<body>
<header>
  <div class="row"><strong>camsort label: {name}</strong> <span id="progress"></span> <span id="shown"></span>
    <span id="status"></span> <span id="error"></span></div>
  <div class="row"><span id="label-buttons"></span>
    <button id="skip">skip (s)</button> <button id="undo">undo (u)</button>
    <label>label all selected as <select id="bulk"></select></label> <button id="label-selected">label selected</button></div>
  <div class="row">
    <label>camera <select id="camera"><option value="">all</option></select></label>
    <label>guess <select id="guess"><option value="">all</option></select></label>
    <label>confidence at most <input id="maxconf" type="number" min="0" max="1" step="0.05" placeholder="any"></label>
    <label>sort <select id="sort"><option value="time">camera, then time</option><option value="uncertainty">most uncertain first</option></select></label>
    <label><input id="hide-done" type="checkbox"> hide labelled</label>
  </div>
  <div class="row keys">keys: 1-9 label, arrows move, space select, shift-click range, a select shown, s skip, u undo, Esc clear</div>
</header>
<main id="grid"></main>
<script>{_SCRIPT}</script>
</body></html>
"""
