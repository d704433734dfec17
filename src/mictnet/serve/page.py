"""The page served at ``/``: one self-contained HTML file (inline CSS and JS, no external
resource). It uploads a video with a progress bar, plays it beside the top-5 actions, and shows
the timeline (top action per second) as a strip that seeks the player when clicked. The "heat
map" toggle asks ``/api/explain`` for the top action's Grad-CAM and overlays it on the playing
video, frame by frame."""

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
#status { margin: 8px 0; min-height: 1.4em; color: #444; }
#status.error { color: #b00; }
#result { display: none; gap: 20px; margin-top: 8px; }
#result.shown { display: flex; flex-wrap: wrap; }
#player { flex: 1 1 420px; }
video { width: 100%; max-height: 420px; background: #000; border-radius: 6px; }
#actions { flex: 1 1 300px; }
#top1 { font-size: 22px; font-weight: 600; margin-bottom: 10px; }
.row { margin: 6px 0; }
.row .name { display: flex; justify-content: space-between; font-size: 14px; }
.bar { height: 10px; background: #eee; border-radius: 5px; overflow: hidden; }
.bar div { height: 100%; background: #46c; }
#timeline { display: flex; height: 22px; margin-top: 8px; border-radius: 4px;
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
<progress id="progress" max="1" value="0" hidden></progress>
<div id="status"></div>
<div id="result">
  <div id="player">
    <div id="stage"><video id="video" controls muted></video><canvas id="heat" hidden></canvas>
    </div>
    <label id="heatlabel"><input id="heatmap" type="checkbox"> heat map: where and when the
      model saw the top action (Grad-CAM)</label>
    <div id="timeline" title="top action per second: click to seek"></div>
    <div id="legend"></div>
  </div>
  <div id="actions"><div id="top1"></div><div id="bars"></div></div>
</div>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
let classes = [];

function colour(label) {
  const i = Math.max(classes.indexOf(label), 0);
  return "hsl(" + Math.round(i * 137.508) % 360 + ", 62%, 52%)";
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

function showTimeline(steps) {
  const strip = $("timeline"), legend = $("legend");
  strip.replaceChildren();
  legend.replaceChildren();
  if (!steps || steps.length < 2) return;
  const total = steps[steps.length - 1].end;
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

function showResult(record) {
  $("top1").textContent = record.labels[0];
  $("bars").replaceChildren(...record.labels.map((l, i) => row(l, record.probabilities[i])));
  showTimeline(record.timeline);
  $("result").className = "shown";
  const clips = record.clips + " clip" + (record.clips > 1 ? "s" : "");
  setStatus(record.video + ": " + record.width + "x" + record.height + ", " + record.frames
    + " frames, " + clips + (record.warning ? "; warning: " + record.warning : ""), false);
}

function upload(file) {
  resetHeat(file);
  const video = $("video");
  if (video.src) URL.revokeObjectURL(video.src);
  video.src = URL.createObjectURL(file);
  video.onerror = () => setStatus($("status").textContent
    + " (this browser cannot play the file; the answer is still the model's)", false);
  $("result").className = "";
  const progress = $("progress");
  progress.hidden = false;
  progress.value = 0;
  setStatus("uploading " + file.name + "\\u2026", false);
  const form = new FormData();
  form.append("file", file);
  const xhr = new XMLHttpRequest();
  xhr.open("POST", "api/predict?timeline=1");
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
  const [gh, gw] = e.grid, small = document.createElement("canvas");
  small.width = gw;
  small.height = gh;
  const image = small.getContext("2d").createImageData(gw, gh);
  for (let y = 0; y < gh; y++) {
    for (let x = 0; x < gw; x++) {
      const v = e.maps[f][y][x], i = 4 * (y * gw + x);
      image.data.set([...jet(v), Math.round(255 * 0.6 * v)], i);
    }
  }
  small.getContext("2d").putImageData(image, 0, 0);
  ctx.imageSmoothingEnabled = true;
  const [x0, y0, x1, y1] = e.crop;
  ctx.drawImage(small, ox + x0 * scale, oy + y0 * scale, (x1 - x0) * scale, (y1 - y0) * scale);
  canvas.dataset.frame = f;
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
        {method: "POST", body: form})
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

fetch("api/model").then((r) => r.json()).then((m) => {
  classes = m.classes;
  $("model").textContent = "model " + m.model + " \\u00b7 " + m.num_classes + " classes \\u00b7 "
    + "input " + m.input_size.join("\\u00d7") + " (frames\\u00d7height\\u00d7width)";
}).catch(() => { $("model").textContent = "model information unavailable"; });
</script>
</body>
</html>
"""
