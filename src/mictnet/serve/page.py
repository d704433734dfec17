"""The page served at ``/``: one self-contained HTML file (inline CSS and JS, no external
resource). It uploads a video with a progress bar, plays it beside the top-5 actions (a top
action under 50% is shown as uncertain), and shows the timeline (top action per second, the
PNG timeline's colours) as a strip with time marks and a playhead that seeks the player when
clicked. A file the browser cannot play is shown as the server's preview frames, said plainly;
errors are red. "Use the camera" streams the browser's camera to ``/api/camera`` and shows the
live top actions beside the picture. The "heat map" toggle asks ``/api/explain`` for the top
action's Grad-CAM and overlays it on the playing video, frame by frame. ``/?token=TOKEN``
keeps the server's token for this tab and sends it as ``Authorization: Bearer``."""

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>mictnet: action recognition</title>
<style>
body { font: 15px/1.4 system-ui, sans-serif; margin: 0 auto; max-width: 980px; padding: 16px;
       color: #222; }
h1 { font-size: 20px; margin: 0 0 4px; }
#model { color: #666; font-size: 13px; margin-bottom: 12px; }
#drop { display: block; border: 2px dashed #99a; border-radius: 8px; padding: 22px;
        text-align: center; cursor: pointer; background: #f7f7fb; }
#drop.over { background: #e6ecff; border-color: #46c; }
progress { width: 100%; height: 14px; margin-top: 10px; }
#camera { margin-top: 8px; font: inherit; padding: 4px 12px; }
#status { margin: 8px 0; min-height: 1.4em; color: #444; }
#status.error { color: #b00; }
#result { display: none; gap: 20px; margin-top: 8px; }
#result.shown { display: flex; flex-wrap: wrap; }
#player { flex: 1 1 420px; }
video { width: 100%; max-height: 420px; background: #000; border-radius: 6px; }
#actions { flex: 1 1 300px; }
#top1 { font-size: 22px; font-weight: 600; }
#top1.uncertain { color: #777; font-style: italic; font-weight: 500; }
#confidence { font-size: 13px; color: #555; margin-bottom: 10px; }
#confidence.uncertain { color: #a15c00; font-weight: 600; }
#preview { width: 100%; max-height: 420px; object-fit: contain; background: #000;
           border-radius: 6px; }
#note { font-size: 13px; color: #a15c00; margin: 4px 0; }
#strip { position: relative; margin-top: 8px; }
#playhead { position: absolute; top: -3px; bottom: -3px; width: 2px; background: #000;
            left: 0; pointer-events: none; }
#marks { position: relative; height: 16px; font-size: 11px; color: #555; }
#marks span { position: absolute; transform: translateX(-50%); white-space: nowrap; }
#marks span::before { content: ""; position: absolute; left: 50%; top: -4px; height: 4px;
                      border-left: 1px solid #888; }
.row { margin: 6px 0; }
.row .name { display: flex; justify-content: space-between; font-size: 14px; }
.bar { height: 10px; background: #eee; border-radius: 5px; overflow: hidden; }
.bar div { height: 100%; background: #46c; }
#timeline { display: flex; height: 22px; border-radius: 4px;
            overflow: hidden; cursor: pointer; }
#timeline div { height: 100%; box-shadow: inset -1px 0 #fff; }
#timeline div:hover { opacity: 0.7; }
#legend { font-size: 12px; color: #555; margin-top: 4px; }
#legend span { display: inline-block; width: 10px; height: 10px; margin: 0 3px 0 10px; }
#stage { position: relative; }
#heat { position: absolute; left: 0; top: 0; pointer-events: none; }
#heatlabel { font-size: 13px; color: #444; display: block; margin-top: 6px; }
</style>
</head>
<body>
<h1>mictnet action recognition</h1>
<div id="model">loading the model&hellip;</div>
<label id="drop">Choose or drop a video file
  <input id="file" type="file" accept="video/*,.avi,.mkv" hidden>
</label>
<button id="camera" type="button">Use the camera</button>
<progress id="progress" max="1" value="0" hidden></progress>
<div id="status"></div>
<div id="result">
  <div id="player">
    <div id="stage"><video id="video" controls muted></video><canvas id="heat" hidden></canvas>
    </div>
    <img id="preview" alt="frames of the video" hidden>
    <div id="note" hidden></div>
    <label id="heatlabel"><input id="heatmap" type="checkbox"> heat map: where and when the
      model saw the top action (Grad-CAM)</label>
    <div id="strip"><div id="timeline" title="top action per second: click to seek"></div>
      <div id="playhead" hidden></div></div>
    <div id="marks"></div>
    <div id="legend"></div>
  </div>
  <div id="actions"><div id="top1"></div><div id="confidence"></div><div id="bars"></div></div>
</div>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
const UNCERTAIN = 0.5;  // a top action below this is shown as a guess
const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
                 "#7f7f7f", "#bcbd22", "#17becf"];  // matplotlib's tab10, as the PNG timeline
let order = [], current = null, total = 0, ticker = null;
const query = new URLSearchParams(location.search);
if (query.has("token")) {  // kept for this tab, out of the address bar
  sessionStorage.setItem("mict-token", query.get("token"));
  history.replaceState(null, "", location.pathname);
}
const token = sessionStorage.getItem("mict-token");
const auth = token ? {"Authorization": "Bearer " + token} : {};

function colour(label) {  // by first appearance, timeline first, as the PNG timeline
  if (!order.includes(label)) order.push(label);
  return PALETTE[order.indexOf(label) % PALETTE.length];
}

function clock(t) {
  return t < 60 ? t + " s" : Math.floor(t / 60) + ":" + String(Math.round(t % 60)).padStart(2, "0");
}

function showPlayhead(t) {
  const head = $("playhead");
  head.hidden = !total;
  if (total) head.style.left = (100 * Math.min(t / total, 1)) + "%";
}

function setStatus(text, isError) {
  $("status").textContent = text;
  $("status").className = isError ? "error" : "";
}

function row(label, probability) {
  const div = document.createElement("div");
  div.className = "row";
  const name = document.createElement("div");
  name.className = "name";
  const left = document.createElement("span");
  left.textContent = label;
  const right = document.createElement("span");
  right.textContent = (100 * probability).toFixed(1) + "%";
  name.append(left, right);
  const bar = document.createElement("div");
  bar.className = "bar";
  const fill = document.createElement("div");
  fill.style.width = (100 * probability).toFixed(1) + "%";
  fill.style.background = colour(label);
  bar.append(fill);
  div.append(name, bar);
  return div;
}

function showMarks() {
  const every = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1800, 3600]
    .find((e) => total / e <= 8) || 7200;
  const marks = [];
  for (let t = 0; t <= total + 1e-9; t += every) {
    const mark = document.createElement("span");
    mark.style.left = (100 * t / total) + "%";
    mark.textContent = clock(t);
    marks.push(mark);
  }
  $("marks").replaceChildren(...marks);
}

function showTimeline(steps) {
  const strip = $("timeline"), legend = $("legend");
  strip.replaceChildren();
  legend.replaceChildren();
  $("marks").replaceChildren();
  total = 0;
  showPlayhead(0);
  if (!steps || steps.length < 2) return;
  total = steps[steps.length - 1].end;
  showMarks();
  showPlayhead(0);
  for (const s of steps) {
    const seg = document.createElement("div");
    seg.style.width = (100 * (s.end - s.start) / total) + "%";
    seg.style.background = colour(s.label);
    seg.title = s.start.toFixed(1) + "-" + s.end.toFixed(1) + " s: " + s.label + " "
      + (100 * s.probability).toFixed(0) + "%";
    seg.onclick = () => { $("video").currentTime = s.start; $("video").play(); };
    strip.append(seg);
  }
  for (const label of new Set(steps.map((s) => s.label))) {
    const key = document.createElement("span");
    key.style.background = colour(label);
    legend.append(key, label);
  }
}

function showPreview() {  // the browser cannot decode the file: the server's frames instead
  const preview = current && current.preview, note = $("note"), img = $("preview");
  $("video").hidden = true;
  note.hidden = false;
  if (!preview || !preview.frames.length) {
    note.textContent = "This browser cannot play " + current.video + " (its codec); "
      + "the answer below is the model's all the same.";
    return;
  }
  note.textContent = "This browser cannot play " + current.video + " (its codec): showing "
    + preview.frames.length + " frames the server decoded from it.";
  img.hidden = false;
  let k = 0;
  const step = () => {
    img.src = preview.frames[k];
    showPlayhead(preview.times[k]);
    k = (k + 1) % preview.frames.length;
  };
  step();
  ticker = setInterval(step, 400);
}

function showActions(labels, probabilities) {
  const p = probabilities[0], sure = p >= UNCERTAIN;
  $("top1").textContent = labels[0];
  $("top1").className = sure ? "" : "uncertain";
  $("confidence").textContent = (100 * p).toFixed(1) + "% likely"
    + (sure ? "" : ": uncertain, the model's best guess");
  $("confidence").className = sure ? "" : "uncertain";
  $("bars").replaceChildren(...labels.map((l, i) => row(l, probabilities[i])));
}

function showResult(record) {
  current = record;
  order = [];
  showTimeline(record.timeline);
  showActions(record.labels, record.probabilities);
  $("result").className = "shown";
  if ($("video").error) showPreview();
  const clips = record.clips + " clip" + (record.clips > 1 ? "s" : "");
  setStatus(record.video + ": " + record.width + "x" + record.height + ", " + record.frames
    + " frames, " + clips + (record.warning ? "; warning: " + record.warning : "")
    + (record.notes ? "; " + record.notes.join("; ") : ""), false);
}

// Camera mode: frames drawn at the size the server names, sent a few at a time (raw RGBA);
// the server answers the steps they complete (each frame computed once). Frames wait while a
// request is under way; over a chunk's worth, the oldest are dropped (and counted).
let cam = null;

async function startCamera() {
  let media;
  try {
    media = await navigator.mediaDevices.getUserMedia({video: true, audio: false});
  } catch (e) {
    setStatus("camera unavailable: " + e.message, true);
    return;
  }
  const answer = await fetch("api/camera", {method: "POST", headers: auth});
  const body = await answer.json();
  if (answer.status !== 200) {
    media.getTracks().forEach((t) => t.stop());
    setStatus("error " + answer.status + ": " + body.error, true);
    return;
  }
  resetHeat(null);
  clearInterval(ticker);
  current = null;
  order = [];
  const video = $("video");
  if (video.src) { URL.revokeObjectURL(video.src); video.removeAttribute("src"); }
  video.hidden = false;
  $("preview").hidden = true;
  $("note").hidden = true;
  video.srcObject = media;
  video.play();
  showTimeline(null);
  $("top1").textContent = "";
  $("bars").replaceChildren();
  $("result").className = "shown";
  const canvas = document.createElement("canvas");
  canvas.width = body.width;
  canvas.height = body.height;
  cam = {id: body.session, w: body.width, h: body.height, max: body.max_frames, media,
         ctx: canvas.getContext("2d", {willReadFrequently: true}), frames: [], busy: false,
         sent: 0, steps: 0, dropped: 0};
  cam.timer = setInterval(grabFrame, 1000 / body.fps);
  $("camera").textContent = "Stop the camera";
  setStatus("camera: waiting for its first frames\u2026", false);
}

function grabFrame() {
  const video = $("video");
  if (!cam || video.readyState < 2) return;
  cam.ctx.drawImage(video, 0, 0, cam.w, cam.h);
  cam.frames.push(cam.ctx.getImageData(0, 0, cam.w, cam.h).data);
  if (cam.frames.length > cam.max) { cam.frames.shift(); cam.dropped++; }
  if (!cam.busy && cam.frames.length >= 4) sendFrames(cam);
}

function sendFrames(c) {
  const frames = c.frames.splice(0), size = c.w * c.h * 4;
  const body = new Uint8Array(frames.length * size);
  frames.forEach((f, i) => body.set(f, i * size));
  c.busy = true;
  fetch("api/camera/" + c.id + "?frames=" + frames.length,
        {method: "POST", body, headers: auth})
    .then((r) => r.json().then((b) => [r.status, b]))
    .then(([status, b]) => {
      c.busy = false;
      if (c !== cam) return;
      if (status !== 200) {
        stopCamera();
        setStatus("error " + status + ": " + b.error, true);
        return;
      }
      c.sent = b.frames;
      c.steps += b.steps.length;
      if (b.steps.length) {
        const last = b.steps[b.steps.length - 1];
        window.cameraStep = last;
        showActions(last.top.map((t) => t.label), last.top.map((t) => t.probability));
      }
      setStatus("camera: " + c.sent + " frames sent, " + c.steps + " steps"
        + (c.dropped ? ", " + c.dropped + " frames dropped (the server fell behind)" : ""), false);
    })
    .catch(() => { c.busy = false; });
}

function stopCamera() {
  const c = cam;
  if (!c) return;
  cam = null;
  clearInterval(c.timer);
  c.media.getTracks().forEach((t) => t.stop());
  $("video").srcObject = null;
  fetch("api/camera/" + c.id, {method: "DELETE", headers: auth});
  $("camera").textContent = "Use the camera";
}

$("camera").onclick = () => { if (cam) stopCamera(); else startCamera(); };

function upload(file) {
  stopCamera();
  resetHeat(file);
  const video = $("video");
  if (video.src) URL.revokeObjectURL(video.src);
  clearInterval(ticker);
  current = null;
  video.hidden = false;
  $("preview").hidden = true;
  $("note").hidden = true;
  video.src = URL.createObjectURL(file);
  video.onerror = () => { if (current) showPreview(); };  // else: when the answer comes
  video.ontimeupdate = () => showPlayhead(video.currentTime);
  $("result").className = "";
  const progress = $("progress");
  progress.hidden = false;
  progress.value = 0;
  setStatus("uploading " + file.name + "\\u2026", false);
  const form = new FormData();
  form.append("file", file);
  const xhr = new XMLHttpRequest();
  xhr.open("POST", "api/predict?timeline=1&preview=1");
  for (const [name, value] of Object.entries(auth)) xhr.setRequestHeader(name, value);
  xhr.upload.onprogress = (e) => { if (e.lengthComputable) progress.value = e.loaded / e.total; };
  xhr.upload.onload = () => {
    progress.removeAttribute("value");
    setStatus("recognising actions in " + file.name + "\\u2026", false);
  };
  xhr.onload = () => {
    progress.hidden = true;
    let body;
    try { body = JSON.parse(xhr.responseText); } catch (e) { body = {error: xhr.statusText}; }
    if (xhr.status === 200) showResult(body);
    else setStatus("error " + xhr.status + ": " + body.error, true);
  };
  xhr.onerror = () => { progress.hidden = true; setStatus("upload failed", true); };
  xhr.send(form);
}

let lastFile = null, explanation = null;

function resetHeat(file) {
  lastFile = file;
  explanation = null;
  $("heatmap").checked = false;
  drawHeat();
}

function jet(v) {
  const c = (x) => 255 * Math.min(Math.max(1.5 - Math.abs(4 * v - x), 0), 1);
  return [c(3), c(2), c(1)];
}

function drawHeat() {
  const canvas = $("heat"), video = $("video"), e = explanation;
  if (!$("heatmap").checked || !e) { canvas.hidden = true; return; }
  canvas.hidden = false;
  const cw = video.clientWidth, ch = video.clientHeight;
  if (canvas.width !== cw || canvas.height !== ch) { canvas.width = cw; canvas.height = ch; }
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, cw, ch);
  const scale = Math.min(cw / e.width, ch / e.height);
  const ox = (cw - e.width * scale) / 2, oy = (ch - e.height * scale) / 2;
  const f = Math.min(e.frames - 1, Math.floor(video.currentTime * (e.fps || 25)));
  // the library's heat (Explanation.heat): each cell at its receptive-field centre, linear
  // between centres, held beyond the outer ones; drawn at the model's input size
  const n = e.input, small = document.createElement("canvas");
  small.width = n;
  small.height = n;
  const ys = lerpWeights(e.rows, n), xs = lerpWeights(e.cols, n), m = e.maps[f];
  const image = small.getContext("2d").createImageData(n, n);
  for (let y = 0; y < n; y++) {
    const [r0, r1, a] = ys[y];
    for (let x = 0; x < n; x++) {
      const [c0, c1, b] = xs[x];
      const v = (1 - a) * ((1 - b) * m[r0][c0] + b * m[r0][c1])
        + a * ((1 - b) * m[r1][c0] + b * m[r1][c1]);
      image.data.set([...jet(v), Math.round(255 * 0.6 * v)], 4 * (y * n + x));
    }
  }
  small.getContext("2d").putImageData(image, 0, 0);
  ctx.imageSmoothingEnabled = true;
  const [x0, y0, x1, y1] = e.crop;
  ctx.drawImage(small, ox + x0 * scale, oy + y0 * scale, (x1 - x0) * scale, (y1 - y0) * scale);
  canvas.dataset.frame = f;
}

function lerpWeights(centres, n) {
  // per pixel of n: [low cell, high cell, weight of the high one]
  const out = [];
  for (let p = 0; p < n; p++) {
    const last = centres.length - 1;
    const q = Math.min(Math.max(p, centres[0]), centres[last]);
    let hi = 1;
    while (hi < last && centres[hi] <= q) hi++;
    if (last === 0) { out.push([0, 0, 0]); continue; }
    const lo = hi - 1, gap = centres[hi] - centres[lo];
    out.push([lo, hi, gap > 0 ? Math.min(1, Math.max(0, (q - centres[lo]) / gap)) : 0]);
  }
  return out;
}

function heatLoop() {
  drawHeat();
  if ($("heatmap").checked && explanation) requestAnimationFrame(heatLoop);
}

$("heatmap").onchange = () => {
  if (!$("heatmap").checked || explanation) { heatLoop(); return; }
  if (!lastFile) { $("heatmap").checked = false; return; }
  const form = new FormData();
  form.append("file", lastFile);
  const file = lastFile;
  setStatus("computing the heat map of " + file.name + "\u2026", false);
  fetch("api/explain?class=" + encodeURIComponent($("top1").textContent),
        {method: "POST", body: form, headers: auth})
    .then((r) => r.json().then((body) => [r.status, body]))
    .then(([status, body]) => {
      if (file !== lastFile) return;
      if (status !== 200) {
        $("heatmap").checked = false;
        setStatus("error " + status + ": " + body.error, true);
        return;
      }
      explanation = body;
      setStatus("heat map of " + body.label + ": " + body.method + " at " + body.layer + " ("
        + body.grid.join("\u00d7") + " cells per frame)", false);
      heatLoop();
    })
    .catch(() => { $("heatmap").checked = false; setStatus("heat map failed", true); });
};

$("file").onchange = (e) => { if (e.target.files.length) upload(e.target.files[0]); };
const drop = $("drop");
drop.ondragover = (e) => { e.preventDefault(); drop.className = "over"; };
drop.ondragleave = () => { drop.className = ""; };
drop.ondrop = (e) => {
  e.preventDefault();
  drop.className = "";
  if (e.dataTransfer.files.length) upload(e.dataTransfer.files[0]);
};

fetch("api/model", {headers: auth}).then((r) => r.json()).then((m) => {
  if (m.error) throw new Error(m.error);
  $("model").textContent = "model " + m.model + " \\u00b7 " + m.num_classes + " classes \\u00b7 "
    + "input " + m.input_size.join("\\u00d7") + " (frames\\u00d7height\\u00d7width)";
}).catch((e) => { $("model").textContent = "model information unavailable: " + e.message; });
</script>
</body>
</html>
"""
