// sam2_ros browser console: shows tracked frames with their masks and sends prompts.
// Protocol: sam2_ros/console/protocol.py. Coordinates go out in displayed-canvas pixels with
// the displayed size; the server scales them to image pixels.
'use strict';

(() => {
  const DRAG_THRESHOLD_PX = 5;
  const FOREGROUND = 1;
  const BACKGROUND = 0;
  const params = new URLSearchParams(location.hash.slice(1));
  const token = params.get('token') || new URLSearchParams(location.search).get('token') || '';

  const $ = (id) => document.getElementById(id);
  const view = $('view');
  const context = view.getContext('2d');
  const maskLayer = document.createElement('canvas');
  const state = {
    socket: null,
    shown: null, // {meta, bitmap}: the frame on screen
    newest: null, // the newest frame received (differs from shown while paused or dragging)
    paused: false,
    drag: null,
    selected: 0, // object id the next prompt refines; 0 = a new object
    marks: [], // prompt points on the selected object: {fx, fy, label} as canvas fractions
    candidates: null, // {objectId, items: [{score, mask}], chosen, frame}
    nextRequest: 1,
    pending: new Map(),
  };

  // ------------------------------------------------------------------ connection

  function connect() {
    const url = new URL('/ws', location.href);
    url.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
    if (token) url.searchParams.set('token', token);
    const socket = new WebSocket(url);
    socket.binaryType = 'arraybuffer';
    socket.onopen = () => setConnection('connected', 'ok');
    socket.onmessage = (event) => {
      if (typeof event.data === 'string') onText(JSON.parse(event.data));
      else onFrame(event.data);
    };
    socket.onclose = (event) => {
      const reason = event.reason ? `: ${event.reason}` : '';
      const refused = event.code === 1008;
      setConnection(`disconnected${reason}${refused ? '' : '; reconnecting'}`, 'bad');
      for (const callback of state.pending.values()) callback({ok: false, message: 'disconnected'});
      state.pending.clear();
      if (!refused) setTimeout(connect, 1000);
    };
    state.socket = socket;
  }

  function setConnection(text, kind) {
    const badge = $('connection');
    badge.textContent = text;
    badge.className = `badge ${kind}`;
  }

  function onText(message) {
    if (message.type === 'hello') {
      $('placeholder').textContent =
        `Waiting for ${message.tracked_objects_topic} with images from ${message.image_topic}` +
        ` (tracker ${message.tracker})…`;
    } else if (message.type === 'tracker') {
      showTracker(message);
    } else if (message.type === 'reply') {
      const callback = state.pending.get(message.request_id);
      state.pending.delete(message.request_id);
      showStatus(message.message, message.ok);
      if (callback) callback(message);
    }
  }

  function showTracker(status) {
    // The tracker's state from its /diagnostics; untrained weights get a banner that stays.
    const badge = $('tracker');
    const lifecycle = status.lifecycle_state ? `${status.lifecycle_state}, ` : '';
    badge.textContent = `tracker: ${lifecycle}${status.level}`;
    badge.title = [status.message, status.sam2, status.detector].filter(Boolean).join('\n');
    const kind = {OK: 'ok', WARN: 'warn', ERROR: 'bad', STALE: 'bad'}[status.level] || '';
    badge.className = `badge ${kind}`;
    const banner = $('untrained');
    banner.hidden = !status.untrained;
    banner.textContent = status.untrained
      ? 'UNTRAINED WEIGHTS: the tracker runs randomly initialised models ' +
        `(${status.sam2 || 'SAM 2'}); its masks, and what you export, are meaningless.`
      : '';
  }

  function request(command, onReply) {
    const socket = state.socket;
    if (!socket || socket.readyState !== WebSocket.OPEN) {
      showStatus('not connected', false);
      return;
    }
    const id = state.nextRequest++;
    state.pending.set(id, onReply || (() => {}));
    socket.send(JSON.stringify({...command, request_id: id}));
    showStatus(`${command.type}…`, null);
  }

  function showStatus(text, ok) {
    const status = $('status');
    status.textContent = text;
    status.dataset.ok = ok === null ? '' : String(ok);
  }

  // ------------------------------------------------------------------ frames

  async function onFrame(buffer) {
    const length = new DataView(buffer).getUint32(0);
    const meta = JSON.parse(new TextDecoder().decode(new Uint8Array(buffer, 4, length)));
    const jpeg = new Blob([new Uint8Array(buffer, 4 + length)], {type: 'image/jpeg'});
    const bitmap = await createImageBitmap(jpeg);
    if (state.newest && stampKey(meta.stamp) <= stampKey(state.newest.meta.stamp)) return;
    state.newest = {meta, bitmap};
    if (!state.paused && !state.drag) show(state.newest);
  }

  function stampKey(stamp) {
    return BigInt(stamp.sec) * 1000000000n + BigInt(stamp.nanosec);
  }

  function stampText(stamp) {
    return `${stamp.sec}.${String(stamp.nanosec).padStart(9, '0')}`;
  }

  function show(frame) {
    state.shown = frame;
    const {meta} = frame;
    if (maskLayer.width !== meta.width || maskLayer.height !== meta.height) {
      maskLayer.width = meta.width;
      maskLayer.height = meta.height;
    }
    paintMasks(meta);
    draw();
    listObjects(meta.objects);
    $('placeholder').hidden = true;
    view.dataset.stamp = stampText(meta.stamp);
    view.dataset.imageWidth = String(meta.width);
    view.dataset.imageHeight = String(meta.height);
    view.dataset.frames = String(Number(view.dataset.frames) + 1);
    $('frame-info').textContent =
      `frame ${stampText(meta.stamp)} ${meta.frame_id} ${meta.width}x${meta.height}` +
      `${meta.is_keyframe ? ' keyframe' : ''}${state.paused ? ' (paused)' : ''}`;
  }

  function fitCanvas(meta) {
    // The canvas has the displayed size in device pixels, so text and lines stay sharp at any
    // image size; the image and the masks are scaled into it.
    const width = Math.round(view.clientWidth * devicePixelRatio);
    const height = Math.round((width * meta.height) / meta.width);
    if (view.width !== width || view.height !== height) {
      view.width = width;
      view.height = height;
    }
  }

  function objectColor(id) {
    // The tracker overlay's colours: golden-angle hue, saturation 200/255, value 1.
    const hue = 2 * Math.floor((id * 137.508) % 180);
    const chroma = 200 / 255;
    const f = (n) => {
      const k = (n + hue / 60) % 6;
      return Math.round(255 * (1 - chroma * Math.max(0, Math.min(k, 4 - k, 1))));
    };
    return [f(5), f(3), f(1)];
  }

  function paintRle(data, counts, height, width, rgba) {
    // COCO RLE: column-major runs, starting with background.
    let index = 0;
    for (let run = 0; run < counts.length; run++) {
      const end = index + counts[run];
      if (run % 2 === 1) {
        for (let i = index; i < end; i++) {
          const x = Math.floor(i / height);
          const p = ((i - x * height) * width + x) * 4;
          data[p] = rgba[0];
          data[p + 1] = rgba[1];
          data[p + 2] = rgba[2];
          data[p + 3] = rgba[3];
        }
      }
      index = end;
    }
  }

  function paintMasks(meta) {
    const image = new ImageData(meta.width, meta.height);
    const ordered = [...meta.objects].sort((a, b) => a.id - b.id);
    for (const obj of ordered) {
      const alpha = obj.id === state.selected ? 150 : 100;
      paintRle(image.data, obj.mask.counts, meta.height, meta.width, [...objectColor(obj.id), alpha]);
    }
    maskLayer.getContext('2d').putImageData(image, 0, 0);
  }

  function draw() {
    const frame = state.shown;
    if (!frame) return;
    const {meta} = frame;
    fitCanvas(meta);
    const scale = view.width / meta.width; // canvas pixels per image pixel
    const px = devicePixelRatio; // canvas pixels per CSS pixel
    context.imageSmoothingEnabled = true;
    context.drawImage(frame.bitmap, 0, 0, view.width, view.height);
    context.imageSmoothingEnabled = false; // mask pixels stay square
    context.drawImage(maskLayer, 0, 0, view.width, view.height);
    context.font = `${12 * px}px system-ui, sans-serif`;
    context.lineWidth = 1.5 * px;
    for (const obj of meta.objects) {
      if (!obj.area) continue;
      const [x, y, w, h] = obj.box.map((v) => v * scale);
      const [r, g, b] = objectColor(obj.id);
      context.strokeStyle = `rgb(${r},${g},${b})`;
      context.setLineDash(obj.id === state.selected ? [6 * px, 3 * px] : []);
      context.strokeRect(x, y, w, h);
      const text = `${obj.id} ${obj.label || obj.class_name} ${obj.state}`;
      const top = Math.max(0, y - 16 * px);
      context.fillStyle = 'rgba(0,0,0,0.6)';
      context.fillRect(x, top, context.measureText(text).width + 6 * px, 16 * px);
      context.fillStyle = `rgb(${r},${g},${b})`;
      context.fillText(text, x + 3 * px, top + 12 * px);
    }
    context.setLineDash([]);
    drawMarks(px);
    drawDrag(px);
  }

  function drawMarks(px) {
    for (const mark of state.marks) {
      context.fillStyle = mark.label === FOREGROUND ? '#3ddc84' : '#ff5252';
      context.strokeStyle = '#000';
      context.beginPath();
      context.arc(mark.fx * view.width, mark.fy * view.height, 5 * px, 0, 2 * Math.PI);
      context.fill();
      context.stroke();
    }
  }

  function drawDrag(px) {
    const drag = state.drag;
    if (!drag || !drag.moved) return;
    const sx = view.width / drag.canvas.width;
    const sy = view.height / drag.canvas.height;
    context.strokeStyle = '#fff';
    context.setLineDash([4 * px, 4 * px]);
    context.strokeRect(
      Math.min(drag.x0, drag.x1) * sx, Math.min(drag.y0, drag.y1) * sy,
      Math.abs(drag.x1 - drag.x0) * sx, Math.abs(drag.y1 - drag.y0) * sy);
    context.setLineDash([]);
  }

  // ------------------------------------------------------------------ objects

  function listObjects(objects) {
    const body = $('objects').tBodies[0];
    body.replaceChildren(...objects.map((obj) => {
      const row = document.createElement('tr');
      row.dataset.id = String(obj.id);
      row.classList.toggle('selected', obj.id === state.selected);
      const swatch = document.createElement('span');
      swatch.className = 'swatch';
      swatch.style.background = `rgb(${objectColor(obj.id).join(',')})`;
      const score = obj.score === null ? '–' : obj.score.toFixed(2);
      const cells = [swatch, String(obj.id), obj.label || obj.class_name || '', obj.state, score];
      for (const content of cells) {
        const cell = document.createElement('td');
        cell.append(content);
        row.append(cell);
      }
      const remove = document.createElement('button');
      remove.type = 'button';
      remove.className = 'remove';
      remove.title = `remove object ${obj.id}`;
      remove.textContent = '✕';
      remove.addEventListener('click', (event) => {
        event.stopPropagation();
        removeObject(obj.id);
      });
      const cell = document.createElement('td');
      cell.append(remove);
      row.append(cell);
      row.addEventListener('click', () => select(obj.id));
      return row;
    }));
  }

  function select(id) {
    if (id !== state.selected) state.marks = [];
    state.selected = id;
    $('target').textContent = id ? `Next prompt: refines object ${id}` : 'Next prompt: new object';
    for (const row of $('objects').tBodies[0].rows) {
      row.classList.toggle('selected', Number(row.dataset.id) === id);
    }
    if (state.shown) {
      paintMasks(state.shown.meta);
      draw();
    }
  }

  function selectNeighbour(step) {
    const ids = state.shown ? state.shown.meta.objects.map((obj) => obj.id) : [];
    if (!ids.length) return;
    const at = ids.indexOf(state.selected);
    select(ids[(at + step + ids.length) % ids.length]);
  }

  function removeObject(id) {
    if (!id) {
      showStatus('select an object to remove first', false);
      return;
    }
    request({type: 'remove', object_id: id}, (reply) => {
      if (reply.ok && state.selected === id) select(0);
      if (reply.ok && state.candidates && state.candidates.objectId === id) clearCandidates();
    });
  }

  function reset() {
    request({type: 'reset'}, (reply) => {
      if (!reply.ok) return;
      select(0);
      clearCandidates();
    });
  }

  // ------------------------------------------------------------------ prompts

  function pointer(event) {
    const rect = view.getBoundingClientRect();
    return {
      x: Math.min(Math.max(event.clientX - rect.left, 0), rect.width),
      y: Math.min(Math.max(event.clientY - rect.top, 0), rect.height),
      canvas: {width: rect.width, height: rect.height},
    };
  }

  view.addEventListener('contextmenu', (event) => event.preventDefault());

  view.addEventListener('pointerdown', (event) => {
    if (!state.shown || (event.button !== 0 && event.button !== 2)) return;
    view.setPointerCapture(event.pointerId);
    const at = pointer(event);
    // The frame on screen now is the one prompted: it stays up until the button is released.
    state.drag = {
      x0: at.x, y0: at.y, x1: at.x, y1: at.y, canvas: at.canvas, moved: false,
      background: event.button === 2 || event.shiftKey, frame: state.shown,
    };
  });

  view.addEventListener('pointermove', (event) => {
    const drag = state.drag;
    if (!drag) return;
    const at = pointer(event);
    drag.x1 = at.x;
    drag.y1 = at.y;
    drag.moved ||= Math.hypot(at.x - drag.x0, at.y - drag.y0) > DRAG_THRESHOLD_PX;
    draw();
  });

  view.addEventListener('pointerup', (event) => {
    const drag = state.drag;
    if (!drag) return;
    state.drag = null;
    if (drag.moved && !drag.background) {
      const box = [Math.min(drag.x0, drag.x1), Math.min(drag.y0, drag.y1),
        Math.max(drag.x0, drag.x1), Math.max(drag.y0, drag.y1)];
      sendPrompt(drag.frame, drag.canvas, [], box);
    } else if (drag.background && !state.selected) {
      showStatus('a background point refines an object: select one first', false);
    } else {
      const label = drag.background ? BACKGROUND : FOREGROUND;
      sendPrompt(drag.frame, drag.canvas, [{x: drag.x0, y: drag.y0, label}], null);
    }
    if (!state.paused && state.newest) show(state.newest);
    else draw();
  });

  function sendPrompt(frame, canvas, points, box) {
    const objectId = state.selected;
    const command = {
      type: 'prompt',
      object_id: objectId,
      label: objectId ? '' : $('label').value.trim(),
      stamp: frame.meta.stamp,
      canvas,
      points,
      box,
    };
    request(command, (reply) => {
      if (!reply.ok) return;
      if (!objectId) select(reply.object_id);
      for (const point of points) {
        state.marks.push({fx: point.x / canvas.width, fy: point.y / canvas.height, label: point.label});
      }
      draw();
      if (reply.candidates && reply.candidates.length > 1) {
        showCandidates(reply.object_id, reply.candidates, frame);
      }
    });
  }

  // ------------------------------------------------------------------ candidates

  function showCandidates(objectId, items, frame) {
    state.candidates = {objectId, items, chosen: -1, frame};
    const {meta, bitmap} = frame;
    const holder = $('candidates');
    holder.replaceChildren(...items.map((item, index) => {
      const thumb = document.createElement('canvas');
      thumb.width = meta.width;
      thumb.height = meta.height;
      const paint = thumb.getContext('2d');
      paint.drawImage(bitmap, 0, 0);
      const overlay = new ImageData(meta.width, meta.height);
      const [height, width] = item.mask.size;
      paintRle(overlay.data, item.mask.counts, height, width, [...objectColor(objectId), 150]);
      const layer = document.createElement('canvas');
      layer.width = meta.width;
      layer.height = meta.height;
      layer.getContext('2d').putImageData(overlay, 0, 0);
      paint.drawImage(layer, 0, 0);
      const button = document.createElement('button');
      button.type = 'button';
      button.className = 'candidate';
      button.title = `use candidate ${index + 1} (key ${index + 1})`;
      const score = item.score === null ? '–' : item.score.toFixed(2);
      button.append(thumb, `${index + 1}: ${score}`);
      button.addEventListener('click', () => chooseCandidate(index));
      return button;
    }));
  }

  function chooseCandidate(index) {
    const candidates = state.candidates;
    if (!candidates || index >= candidates.items.length) return;
    request({type: 'choose_candidate', index}, (reply) => {
      if (!reply.ok) return;
      candidates.chosen = index;
      [...$('candidates').children].forEach((button, i) => {
        button.classList.toggle('chosen', i === index);
      });
    });
  }

  function clearCandidates() {
    state.candidates = null;
    const hint = document.createElement('p');
    hint.className = 'hint';
    hint.textContent = 'A single click shows SAM 2\'s candidate masks here; pick one to use it.';
    $('candidates').replaceChildren(hint);
  }

  // ------------------------------------------------------------------ display and export

  function togglePause() {
    state.paused = !state.paused;
    $('pause').classList.toggle('active', state.paused);
    $('pause').textContent = state.paused ? 'Resume' : 'Pause';
    if (!state.paused && state.newest) show(state.newest);
    else if (state.shown) show(state.shown);
  }

  function exportFrame(format) {
    const frame = state.shown;
    if (!frame) {
      showStatus('no frame to export yet', false);
      return;
    }
    const url = new URL('/export', location.href);
    url.searchParams.set('sec', frame.meta.stamp.sec);
    url.searchParams.set('nanosec', frame.meta.stamp.nanosec);
    url.searchParams.set('format', format);
    if (token) url.searchParams.set('token', token);
    const link = document.createElement('a');
    link.href = url.toString();
    link.download = '';
    link.click();
    showStatus(`exported frame ${stampText(frame.meta.stamp)} as ${format}`, true);
  }

  // ------------------------------------------------------------------ controls

  $('new-object').addEventListener('click', () => select(0));
  $('remove').addEventListener('click', () => removeObject(state.selected));
  $('reset').addEventListener('click', reset);
  $('pause').addEventListener('click', togglePause);
  $('export-json').addEventListener('click', () => exportFrame('json'));
  $('export-png').addEventListener('click', () => exportFrame('png'));
  $('export-jpg').addEventListener('click', () => exportFrame('jpg'));

  const KEYS = {
    n: () => select(0),
    Escape: () => select(0),
    '[': () => selectNeighbour(-1),
    ']': () => selectNeighbour(1),
    Delete: () => removeObject(state.selected),
    Backspace: () => removeObject(state.selected),
    R: reset, // Shift+R
    ' ': togglePause,
    e: () => exportFrame('json'),
    m: () => exportFrame('png'),
    j: () => exportFrame('jpg'),
  };

  document.addEventListener('keydown', (event) => {
    if (event.target instanceof HTMLInputElement || event.ctrlKey || event.metaKey || event.altKey) {
      return;
    }
    const digit = Number(event.key);
    const action = KEYS[event.key] || (digit >= 1 && digit <= 9 ? () => chooseCandidate(digit - 1) : null);
    if (!action) return;
    event.preventDefault();
    action();
  });

  window.addEventListener('resize', draw);
  connect();
})();
