// SegFill canvas: an editor around one image: click-to-mask, boxes, segment map, brush/eraser, zoom and pan
// with full-resolution detail, results with a before/after compare, and the outpaint frame with its tile plan.
//
// Runs unchanged in the WebUI (gradio 3.41), Forge (gradio 4) and the standalone app. It never reads
// gradio's own DOM: it talks to Python through components of its own, found by elem_id:
//   #segfill_event_button  hidden button; its front-end function (segfillCollectEvents) hands the queued
//                          events to Python as the value of the hidden #segfill_events textbox
//   #segfill_render        hidden textbox Python answers into; a follow-up front-end function calls
//                          segfillRender(payload) with it
//   #segfill_file          hidden gr.File: an image dropped, pasted or opened here is handed to its input
//   #segfill_canvas_root   our own markup inside a gr.HTML block
// Coordinates sent to Python are image pixels (x, y), origin top-left, whatever the zoom or letterboxing.
//
// Other scripts plug in through window.segfillCanvas (see the end of this file and docs/ARCHITECTURE.md):
// a preview provider (hover preview and instant click masks computed in the browser), masks drawn without the
// server, busy indicators, and listeners for what the user does.
(function () {
    "use strict";
    if (window.segfillCanvasLoaded) {
        return;
    }
    window.segfillCanvasLoaded = true;

    var CLICK_SLOP = 4; // px of pointer travel that still counts as a click, not a drag
    var IN_FLIGHT_TIMEOUT_MS = 20000;
    var DETECT_TIMEOUT_MS = 900000; // a detect may download its detector first (gradio shows that progress)
    var HANDLE_PX = 9; // how close (screen px) to a frame edge grabs it
    var FRAME_SNAP = 8; // frame sides snap to multiples of this (the latent grid)
    var HOVER_DELAY_MS = 40; // the pointer rests this long before a hover preview is asked for
    var HOVER_INTERVAL_MS = 90; // and previews are asked for at most this often
    var VIEW_DEBOUNCE_MS = 180;
    var STORAGE_KEY = "segfill.canvas.v1";
    var MODES = {v: "select", s: "segments", b: "brush", e: "eraser", h: "pan", f: "frame"};
    var VIEWS = ["overlay", "mask", "cutout"];
    var COMPARES = ["split", "before", "after"];
    var PASS_COLOURS = ["#ffd60a", "#64d2ff", "#ff9f0a", "#bf5af2", "#30d158", "#ff375f"];

    function appRoot() {
        if (typeof gradioApp === "function") {
            try {
                return gradioApp();
            } catch (e) { /* fall through */ }
        }
        var app = document.querySelector("gradio-app");
        return (app && app.shadowRoot) || document;
    }

    function byId(id) {
        var root = appRoot();
        return (root.getElementById ? root.getElementById(id) : root.querySelector("#" + id)) || document.getElementById(id);
    }

    function loadSettings() {
        try {
            return JSON.parse(window.localStorage.getItem(STORAGE_KEY) || "{}") || {};
        } catch (e) {
            return {};
        }
    }

    function saveSettings() {
        try {
            window.localStorage.setItem(STORAGE_KEY, JSON.stringify({
                maskColor: S.maskColor, maskOpacity: S.maskOpacity, brushSize: S.brushSize, hardness: S.hardness
            }));
        } catch (e) { /* private mode: settings last for this page only */ }
    }

    var saved = loadSettings();
    var S = {
        root: null,
        canvas: null,
        ctx: null,
        mode: "select",
        view: "overlay",
        compare: "split",
        split: 0.5, // divider position, fraction of the result's width
        brushSize: saved.brushSize || 32, // image px
        hardness: saved.hardness === undefined ? 100 : saved.hardness, // %
        maskColor: saved.maskColor || "#1e90ff",
        maskOpacity: saved.maskOpacity === undefined ? 45 : saved.maskOpacity,
        // what Python told us
        payload: null,
        width: 0,
        height: 0,
        imageRev: -1,
        rev: -1,
        image: null, // HTMLImageElement of the display copy
        localImage: null, // the file just opened, shown until the server's copy arrives
        maskCanvas: null, // white, alpha = mask (display resolution)
        maskSeq: 0,
        segmentImage: null,
        detail: null, // {rect, size, image, mask, imageRev}: full-resolution tiles of the zoomed-in region
        result: null, // the result on the canvas: payload.result plus .img
        resultImg: null,
        resultId: null,
        gallery: [],
        frame: [0, 0, 0, 0], // left, right, top, bottom
        framePlan: null,
        detections: [],
        chipRects: [],
        textFocus: null, // the detected box whose SAM candidates the strip shows (payload.text_focus)
        clickThumbs: [], // the strip's two sources, kept apart: Python leaves out thumbnails the browser has
        textThumbs: [],
        thumbSeq: 0,
        stripKey: "",
        // extension points
        provider: null,
        hoverMask: null,
        provisional: null, // {canvas, seq, rev}: a mask drawn before the server's answer
        listeners: {},
        busyMap: {},
        taskTimer: null, // the progress poll of the long job this page waits for
        hold: null, // events wait while a click's preview is being drawn (sendAfter)
        // view transform: screen = offset + scale * image
        scale: 1,
        ox: 0,
        oy: 0,
        userZoomed: false,
        // interaction
        drag: null,
        hover: false,
        pointer: null, // last pointer position in canvas css px
        spaceDown: false,
        queue: [],
        inFlight: false,
        inFlightSince: 0,
        renderCount: 0,
        applied: 0, // payloads applied so far; images decode asynchronously, so a late decode of an older
        maskOf: 0, // payload must not replace a newer one's mask (maskOf = the payload the mask belongs to)
        overlayCache: null,
        viewTimer: null,
        lastView: "",
        hoverTimer: null,
        lastHoverAt: 0,
        hoverSeq: 0
    };

    function emit(name, data) {
        (S.listeners[name] || []).slice().forEach(function (fn) {
            try {
                fn(data);
            } catch (e) {
                if (window.console) {
                    console.error("SegFill listener for " + name + " failed:", e);
                }
            }
        });
    }

    // ---- events to Python -------------------------------------------------------------------------------
    function send(event) {
        emit("event", event);
        S.queue.push(event);
        flush();
    }

    function flush() {
        if (!S.queue.length || S.hold) {
            return;
        }
        if (S.inFlight && Date.now() - S.inFlightSince < (S.inFlightDetect ? DETECT_TIMEOUT_MS : IN_FLIGHT_TIMEOUT_MS)) {
            return; // sent together when the current answer has been drawn
        }
        // "Select by text" has its own channel (its listener shows gradio's progress of a first-use download)
        var detect = S.queue[0].type === "detect" && byId("segfill_detect_button");
        S.inFlightDetect = !!detect;
        var button = detect || byId("segfill_event_button");
        if (button && button.tagName !== "BUTTON") {
            button = button.querySelector("button");
        }
        if (!button) {
            setStatus("SegFill: the event channel is missing; reload the page.", true);
            return;
        }
        S.inFlight = true;
        S.inFlightSince = Date.now();
        setInFlight(true);
        button.click();
    }

    // Front-end function of the hidden button: replaces the textbox value with the queued events.
    // channel "detect": the one detect event at the head of the queue; otherwise every event before a detect.
    window.segfillCollectEvents = function (state, events, channel) {
        var batch;
        if (channel === "detect") {
            batch = S.queue.length && S.queue[0].type === "detect" ? S.queue.splice(0, 1) : [];
        } else {
            var cut = byId("segfill_detect_button") ? S.queue.findIndex(function (e) {
                return e.type === "detect";
            }) : -1;
            batch = S.queue.splice(0, cut < 0 ? S.queue.length : cut);
        }
        // an answer to background events only (the zoomed view, a resend) must not wipe the last message
        S.backgroundBatch = batch.length > 0 && batch.every(function (e) {
            return e.type === "view" || e.type === "noop";
        });
        return [state, JSON.stringify(batch)];
    };

    // ---- answers from Python ----------------------------------------------------------------------------
    window.segfillRender = function (text) {
        S.inFlight = false;
        setInFlight(false);
        var payload = null;
        if (text) {
            try {
                payload = typeof text === "string" ? JSON.parse(text) : text;
            } catch (e) {
                setStatus("SegFill: unreadable answer from the server.", true);
            }
        }
        if (payload) {
            setBusy("generate", null); // a job button's busy note ends with its answer
            setBusy("segment_map", null);
            setBusy("detect", null);
            applyPayload(payload);
        }
        if (S.queue.length) {
            flush();
        }
    };

    function loadImage(url) {
        return new Promise(function (resolve, reject) {
            var img = new Image();
            img.onload = function () {
                resolve(img);
            };
            img.onerror = reject;
            img.src = url;
        });
    }

    function applyPayload(p) {
        ensureInit();
        if (!S.root) {
            return;
        }
        S.payload = p;
        S.rev = p.rev;
        var seq = ++S.applied;
        if (p.error || p.message || !S.backgroundBatch) {
            setStatus(p.error || p.message || "", !!p.error);
        }
        S.backgroundBatch = false;
        setBusy("server", p.busy ? {text: p.busy} : null);
        setNotice(p.notice || "");
        var jobs = [];
        if (p.width !== S.width || p.height !== S.height) {
            S.width = p.width || 0;
            S.height = p.height || 0;
            S.userZoomed = false;
            S.detail = null;
        }
        if (!p.width) {
            S.image = null;
            S.maskCanvas = S.segmentImage = S.detail = null;
            S.imageRev = p.image_rev;
            if (!p.busy) {
                S.localImage = null; // the server could not open the file the browser showed
            }
        } else if (p.image) {
            S.imageRev = p.image_rev;
            S.segmentImage = null;
            jobs.push(loadImage(p.image).then(function (img) {
                if (S.imageRev === p.image_rev) {
                    S.image = img;
                    S.localImage = null;
                }
            }));
        } else if (p.image_rev !== S.imageRev) {
            send({type: "noop", need_image: true});
        }
        if (p.width && ("mask" in p)) {
            S.maskOf = seq;
            if (p.mask) {
                jobs.push(loadImage(p.mask).then(function (img) {
                    if (S.maskOf === seq) {
                        S.maskCanvas = alphaMaskFrom(img);
                        S.maskSeq += 1;
                    }
                }));
            } else {
                S.maskCanvas = null;
                S.maskSeq += 1;
            }
            if (S.provisional && p.rev > S.provisional.rev) {
                S.provisional = null; // the server's mask for this click has arrived
            }
        }
        if (p.segment_map) {
            jobs.push(loadImage(p.segment_map).then(function (img) {
                if (S.imageRev === p.image_rev) {
                    S.segmentImage = img;
                }
            }));
        }
        jobs.push(applyDetail(p));
        jobs.push(applyResult(p));
        if (p.results) {
            S.gallery = p.results;
            renderGallery();
        }
        markGallery(p.result ? p.result.id : null);
        if ("frame" in p) {
            S.frame = (p.frame || [0, 0, 0, 0]).slice();
            S.framePlan = p.frame_plan || null;
        }
        S.detections = p.text_boxes || [];
        updateDetect(p);
        renderCandidates(p);
        updateButtons(p);
        if (p.download) {
            triggerDownload(p.download.filename, p.download.url);
        }
        var rev = p.rev;
        Promise.all(jobs).catch(function () {
            setStatus("SegFill: could not decode an image from the server.", true);
        }).then(function () {
            if (!S.userZoomed) {
                fitView();
            }
            draw();
            scheduleViewReport();
            if (seq !== S.applied) {
                return; // a newer payload is being drawn; its markers follow
            }
            S.renderCount += 1;
            S.root.setAttribute("data-segfill-rendered", String(rev));
            S.root.setAttribute("data-segfill-render-count", String(S.renderCount));
            S.root.setAttribute("data-segfill-mask-area", String(p.mask_area || 0));
            S.root.setAttribute("data-segfill-width", String(S.width));
            S.root.setAttribute("data-segfill-height", String(S.height));
            S.root.setAttribute("data-segfill-rendered-at", String(performance.now()));
            emit("payload", window.segfillLastPayload());
        });
    }

    function applyDetail(p) {
        var d = p.detail;
        if (!d) {
            if ("detail" in p) {
                S.detail = null;
            }
            return Promise.resolve();
        }
        var same = S.detail && S.detail.imageRev === d.image_rev && String(S.detail.rect) === String(d.rect) &&
            String(S.detail.size) === String(d.size);
        var next = same ? S.detail : {rect: d.rect, size: d.size, imageRev: d.image_rev, image: null, mask: null};
        var jobs = [];
        if (d.image) {
            jobs.push(loadImage(d.image).then(function (img) {
                next.image = img;
            }));
        }
        if (d.mask) {
            jobs.push(loadImage(d.mask).then(function (img) {
                next.mask = alphaMaskFrom(img);
                S.maskSeq += 1;
            }));
        }
        return Promise.all(jobs).then(function () {
            if (next.image || !same) {
                S.detail = next;
            }
        });
    }

    function applyResult(p) {
        var r = p.result;
        if (!r) {
            if (S.result) {
                S.result = null;
                S.userZoomed = false;
            }
            return Promise.resolve();
        }
        var newId = !S.result || S.result.id !== r.id;
        var previous = S.result;
        S.result = r;
        if (newId) {
            S.userZoomed = false;
            S.compare = "split";
            S.split = 0.5;
        }
        if (r.url) {
            return loadImage(r.url).then(function (img) {
                if (S.result && S.result.id === r.id) {
                    S.resultImg = img;
                    S.resultId = r.id;
                }
            });
        }
        if (previous && previous.id !== r.id && S.resultId !== r.id) {
            S.resultImg = null;
        }
        return Promise.resolve();
    }

    // A grey mask image (0..255) -> a canvas of the same size whose alpha is the mask (white pixels).
    function alphaMaskFrom(source) {
        var w = source.naturalWidth || source.width, h = source.naturalHeight || source.height;
        var canvas = document.createElement("canvas");
        canvas.width = w;
        canvas.height = h;
        var c = canvas.getContext("2d");
        c.drawImage(source, 0, 0);
        var data = c.getImageData(0, 0, w, h);
        var d = data.data;
        for (var i = 0; i < d.length; i += 4) {
            var m = d[i];
            d[i] = d[i + 1] = d[i + 2] = 255;
            d[i + 3] = m;
        }
        c.putImageData(data, 0, 0);
        return canvas;
    }

    // Anything mask-like a plugin hands over -> an alpha-mask canvas (see segfillCanvas.showMask).
    function maskCanvasFrom(mask, useAlpha) {
        if (!mask) {
            return null;
        }
        if (mask.segfillAlpha) {
            return mask; // already white with the mask as alpha (segfill_decoder.js alphaCanvas): no pixel readback
        }
        var w, h, data;
        if (mask.data && mask.width && mask.height && !(mask instanceof ImageData)) {
            w = mask.width;
            h = mask.height;
            var src = mask.data, max = 0;
            for (var k = 0; k < src.length; k += Math.max(1, Math.floor(src.length / 4096))) {
                max = Math.max(max, src[k]);
            }
            var factor = max <= 1 ? 255 : 1;
            data = new ImageData(w, h);
            for (var j = 0; j < w * h; j++) {
                var v = Math.max(0, Math.min(255, Math.round(src[j] * factor)));
                data.data[j * 4] = data.data[j * 4 + 1] = data.data[j * 4 + 2] = 255;
                data.data[j * 4 + 3] = v;
            }
        } else {
            var tmp = document.createElement("canvas");
            if (mask instanceof ImageData) {
                w = mask.width;
                h = mask.height;
                tmp.width = w;
                tmp.height = h;
                tmp.getContext("2d").putImageData(mask, 0, 0);
            } else {
                w = mask.naturalWidth || mask.width;
                h = mask.naturalHeight || mask.height;
                tmp.width = w;
                tmp.height = h;
                tmp.getContext("2d").drawImage(mask, 0, 0);
            }
            data = tmp.getContext("2d").getImageData(0, 0, w, h);
            for (var i = 0; i < data.data.length; i += 4) {
                var m = useAlpha ? data.data[i + 3] : data.data[i];
                data.data[i] = data.data[i + 1] = data.data[i + 2] = 255;
                data.data[i + 3] = m;
            }
        }
        var out = document.createElement("canvas");
        out.width = w;
        out.height = h;
        out.getContext("2d").putImageData(data, 0, 0);
        return out;
    }

    function triggerDownload(filename, url) {
        var a = document.createElement("a");
        a.href = url;
        a.download = filename;
        a.style.display = "none";
        document.body.appendChild(a);
        a.click();
        setTimeout(function () {
            a.remove();
        }, 1000);
    }

    function role(name) {
        return S.root ? S.root.querySelector('[data-role="' + name + '"]') : null;
    }

    function setStatus(text, isError) {
        var el = role("status");
        if (el) {
            el.textContent = text || "";
            el.title = text || "";
            el.classList.toggle("segfill-error", !!isError);
        }
    }

    function setNotice(text) {
        var el = role("notice");
        if (el && text) {
            el.textContent = text;
        } else if (el && S.payload && "notice" in S.payload) {
            el.textContent = text;
        }
    }

    function setInFlight(busy) {
        if (S.root) {
            S.root.classList.toggle("segfill-inflight", !!busy);
        }
        if (busy) {
            scheduleTaskPoll(TASK_FIRST_POLL_MS);
        }
    }

    // a download's Cancel button (the Model panel's HTML carries its own progress channel's cancel URL)
    document.addEventListener("click", function (e) {
        var button = e.target && e.target.closest && e.target.closest("[data-segfill-cancel]");
        var url = button && button.getAttribute("data-segfill-cancel");
        if (!url || url.indexOf("/segfill/v1/tasks/") !== 0) {
            return;
        }
        button.disabled = true;
        button.textContent = "Cancelling…";
        fetch(url, {method: "POST", credentials: "same-origin"}).catch(function () {});
    });

    // ---- the long job this page waits for (segfill/tasks.py): a bar with an estimate, and Cancel -------
    // Python's answer to a click that loads a model or encodes an image comes only at the end; meanwhile the
    // page polls its own progress channel (payload.tasks_url) and shows what is being done and how long is left.
    var TASK_FIRST_POLL_MS = 300, TASK_POLL_MS = 400;

    function waitingForServer() {
        return S.inFlight || Object.keys(S.busyMap).some(function (k) { return k !== "task"; });
    }

    function scheduleTaskPoll(delay) {
        if (!S.taskTimer) {
            S.taskTimer = setTimeout(pollTask, delay);
        }
    }

    function taskText(t) {
        var parts = [t.message || "Working…"];
        if (typeof t.fraction === "number" && t.total) {
            parts.push(Math.round(t.fraction * 100) + " %");
        }
        if (typeof t.eta_s === "number" && t.eta_s >= 1) {
            parts.push("about " + formatSeconds(t.eta_s) + " left");
        }
        return t.cancelling ? "Cancelling…" : parts.join(" · ");
    }

    function formatSeconds(s) {
        s = Math.round(s);
        return s < 60 ? s + " s" : Math.floor(s / 60) + " min " + (s % 60 ? (s % 60) + " s" : "");
    }

    function pollTask() {
        S.taskTimer = null;
        var url = S.payload && S.payload.tasks_url;
        if (!url || !waitingForServer()) {
            if (S.busyMap.task) {
                setBusy("task", null);
            }
            return;
        }
        fetch(url, {credentials: "same-origin", cache: "no-store"}).then(function (response) {
            return response.ok ? response.json() : null;
        }).then(function (t) {
            if (t && t.running && waitingForServer()) {
                setBusy("task", {text: taskText(t), progress: t.total ? t.fraction : null, cancel: !t.cancelling});
            } else if (S.busyMap.task) {
                setBusy("task", null);
            }
        }).catch(function () { /* the answer itself still comes */ }).then(function () {
            if (waitingForServer()) {
                scheduleTaskPoll(TASK_POLL_MS);
            }
        });
    }

    function cancelTask() {
        var url = S.payload && S.payload.tasks_url;
        if (!url) {
            return;
        }
        if (S.busyMap.task) {
            setBusy("task", {text: "Cancelling…", progress: S.busyMap.task.progress, cancel: false});
        }
        fetch(url + "/cancel", {method: "POST", credentials: "same-origin"}).catch(function () {});
    }

    // busy indicators: several sources (the server, a job, a plugin) each under their own key
    function setBusy(key, info) {
        if (info) {
            S.busyMap[key] = info;
            if (key !== "task") {
                scheduleTaskPoll(TASK_FIRST_POLL_MS);
            }
        } else {
            delete S.busyMap[key];
        }
        renderBusy();
    }

    function renderBusy() {
        var el = role("busy");
        if (!el) {
            return;
        }
        var keys = Object.keys(S.busyMap);
        el.hidden = !keys.length;
        S.root.classList.toggle("segfill-is-busy", keys.length > 0);
        if (!keys.length) {
            return;
        }
        var info = S.busyMap[keys[keys.length - 1]];
        role("busy-text").textContent = info.text || "Working…";
        var cancel = role("busy-cancel");
        if (cancel) {
            cancel.hidden = !info.cancel;
        }
        var bar = role("busy-progress");
        var fraction = typeof info.progress === "number" ? info.progress : null;
        bar.hidden = fraction === null;
        if (fraction !== null) {
            bar.value = Math.max(0, Math.min(1, fraction));
        }
        updateButtons(S.payload || {});
    }

    // The strip shows SAM's candidates for the last click, or for the detected box in focus (Select by text).
    function renderCandidates(p) {
        var box = role("candidates");
        if (!box) {
            return;
        }
        // Python leaves the thumbnails out (candidates_same) while they are the ones the browser has.
        if (!p.candidates_same) {
            S.clickThumbs = p.candidates || [];
            S.clickSeq = ++S.thumbSeq;
        }
        if ("text_candidates" in p && !p.text_candidates_same) {
            S.textThumbs = p.text_candidates || [];
            S.textSeq = ++S.thumbSeq;
        }
        S.textFocus = typeof p.text_focus === "number" && S.textThumbs.length ? p.text_focus : null;
        var focus = S.textFocus, forBox = focus !== null;
        var cands = forBox ? S.textThumbs : S.clickThumbs;
        var key = forBox ? "text:" + focus + ":" + S.textSeq : "click:" + S.clickSeq;
        if (key !== S.stripKey) {
            S.stripKey = key;
            box.innerHTML = "";
            var detection = forBox ? (p.text_boxes || [])[focus] : null;
            box.classList.toggle("segfill-candidates-box", forBox);
            box.title = detection ? "SAM's candidates for box " + (focus + 1) + " (" + (detection.label || "object") + ")" : "";
            cands.forEach(function (c) {
                var b = document.createElement("button");
                b.type = "button";
                b.className = "segfill-candidate";
                b.setAttribute("data-index", String(c.index));
                b.title = (forBox ? "Box " + (focus + 1) + ", candidate " : "Candidate ") + (c.index + 1) +
                    " (SAM score " + c.score.toFixed(3) + ")";
                var img = document.createElement("img");
                img.src = c.url;
                img.alt = "candidate " + (c.index + 1);
                var label = document.createElement("span");
                label.textContent = c.score.toFixed(2);
                b.appendChild(img);
                b.appendChild(label);
                b.addEventListener("click", function () {
                    send(forBox ? {type: "text_candidate", index: focus, candidate: c.index} : {type: "candidate", index: c.index});
                });
                box.appendChild(b);
            });
        }
        var active = forBox ? ((p.text_boxes || [])[focus] || {}).candidate : p.candidate;
        Array.prototype.forEach.call(box.children, function (b) {
            b.classList.toggle("active", Number(b.getAttribute("data-index")) === active);
        });
    }

    function renderGallery() {
        var box = role("gallery");
        if (!box) {
            return;
        }
        box.innerHTML = "";
        S.gallery.forEach(function (r) {
            var b = document.createElement("button");
            b.type = "button";
            b.className = "segfill-thumb";
            b.setAttribute("data-result", String(r.id));
            b.title = (r.kind === "outpaint" ? "Outpaint " : "Inpaint ") + r.id + " (" + r.width + "×" + r.height + ")";
            var img = document.createElement("img");
            img.src = r.thumb;
            img.alt = b.title;
            b.appendChild(img);
            b.addEventListener("click", function () {
                send({type: "show_result", id: r.id});
            });
            box.appendChild(b);
        });
        markGallery(S.result ? S.result.id : null);
    }

    function markGallery(id) {
        var box = role("gallery");
        if (box) {
            Array.prototype.forEach.call(box.children, function (b) {
                b.classList.toggle("active", Number(b.getAttribute("data-result")) === id);
            });
        }
    }

    function isBusy() {
        return Object.keys(S.busyMap).length > 0;
    }

    function updateButtons(p) {
        var busy = !!(p.busy || S.busyMap.server);
        var undo = S.root.querySelector('[data-action="undo"]');
        var redo = S.root.querySelector('[data-action="redo"]');
        if (undo) {
            undo.disabled = busy || !p.can_undo;
        }
        if (redo) {
            redo.disabled = busy || !p.can_redo;
        }
        var hasImage = !!(p.width || S.localImage);
        var empty = role("empty");
        if (empty) {
            empty.hidden = hasImage;
        }
        S.root.classList.toggle("segfill-has-image", hasImage);
        var bar = role("resultbar");
        if (bar) {
            bar.hidden = !S.result;
            if (S.result) {
                var r = S.result;
                var resultLabel = role("result-label");
                resultLabel.textContent = (r.kind === "outpaint" ? "Outpaint " : "Inpaint ") + r.index + "/" + r.count +
                    " · " + r.width + "×" + r.height;
                resultLabel.title = r.seed !== null && r.seed !== undefined ? "Seed " + r.seed : "";
                role("result-info").textContent = r.info || "";
                markActive("compare", "data-compare", S.compare);
            }
        }
        S.root.classList.toggle("segfill-comparing", !!S.result);
    }

    // ---- view -------------------------------------------------------------------------------------------
    function cssSize() {
        var stage = S.canvas.parentElement;
        return {w: Math.max(1, stage.clientWidth), h: Math.max(1, stage.clientHeight)};
    }

    // The rectangle (image px) the view fits: the result while comparing, the frame in frame mode, else the image.
    function contentRect() {
        if (S.result) {
            var o = S.result.offset || [0, 0];
            return {x: -o[0], y: -o[1], w: S.result.width, h: S.result.height};
        }
        var f = S.frame;
        if ((S.mode === "frame" || S.drag && S.drag.kind === "frame") && (f[0] || f[1] || f[2] || f[3])) {
            return {x: -f[0], y: -f[2], w: S.width + f[0] + f[1], h: S.height + f[2] + f[3]};
        }
        return {x: 0, y: 0, w: S.width, h: S.height};
    }

    function fitView() {
        if (!S.canvas || !S.width) {
            return;
        }
        var size = cssSize();
        var r = contentRect();
        var margin = S.mode === "frame" && !S.result ? 28 : 0; // room for the frame's handles
        var top = S.result ? 48 : margin; // room for the result bar above the picture
        S.scale = Math.min((size.w - 2 * margin) / r.w, (size.h - top - margin) / r.h);
        S.ox = (size.w - r.w * S.scale) / 2 - r.x * S.scale; // letterboxing
        S.oy = top + (size.h - top - margin - r.h * S.scale) / 2 - r.y * S.scale;
        S.userZoomed = false;
        updateZoomLabel();
    }

    function zoomAt(factor, mx, my) {
        var fit = Math.min(cssSize().w / contentRect().w, cssSize().h / contentRect().h);
        var scale = Math.min(Math.max(S.scale * factor, fit * 0.25), 64);
        S.ox = mx - (mx - S.ox) * (scale / S.scale);
        S.oy = my - (my - S.oy) * (scale / S.scale);
        S.scale = scale;
        S.userZoomed = true;
        updateZoomLabel();
        draw();
        scheduleViewReport();
    }

    function updateZoomLabel() {
        var el = role("zoom");
        if (el) {
            el.textContent = Math.round(S.scale * 100) + "%";
        }
    }

    function toImage(clientX, clientY) {
        var rect = S.canvas.getBoundingClientRect();
        return {x: (clientX - rect.left - S.ox) / S.scale, y: (clientY - rect.top - S.oy) / S.scale};
    }

    function toScreen(x, y) {
        return {x: S.ox + x * S.scale, y: S.oy + y * S.scale};
    }

    function insideImage(pt) {
        return pt.x >= 0 && pt.y >= 0 && pt.x < S.width && pt.y < S.height;
    }

    function clampToImage(pt) {
        return {x: Math.min(Math.max(pt.x, 0), S.width - 0.01), y: Math.min(Math.max(pt.y, 0), S.height - 0.01)};
    }

    // Detail: when the screen shows more pixels than the display copies hold, report the visible region so
    // Python sends it at full resolution (or the screen's). The mask copy (1024 px) is the coarser one.
    function needsDetail() {
        if (!S.width || S.result || !S.image) {
            return false;
        }
        var dpr = window.devicePixelRatio || 1;
        // the copies the canvas holds: the image at 2048 px, the mask at 1024 px (long side) at most
        var maskFactor = Math.min(1, 1024 / Math.max(S.width, S.height));
        var imageFactor = S.image.naturalWidth / S.width;
        var factor = Math.min(maskFactor, imageFactor);
        return factor < 0.999 && S.scale * dpr > factor * 1.05;
    }

    function scheduleViewReport() {
        if (S.viewTimer) {
            clearTimeout(S.viewTimer);
        }
        S.viewTimer = setTimeout(reportView, VIEW_DEBOUNCE_MS);
    }

    function reportView() {
        S.viewTimer = null;
        if (!S.root || !S.width) {
            return;
        }
        var key, event;
        if (needsDetail()) {
            var size = cssSize(), dpr = window.devicePixelRatio || 1;
            var a = toImage(S.canvas.getBoundingClientRect().left, S.canvas.getBoundingClientRect().top);
            var x0 = Math.max(0, a.x), y0 = Math.max(0, a.y);
            var x1 = Math.min(S.width, a.x + size.w / S.scale), y1 = Math.min(S.height, a.y + size.h / S.scale);
            if (x1 <= x0 || y1 <= y0) {
                return;
            }
            var d = S.detail;
            if (d && d.rect[0] <= x0 && d.rect[1] <= y0 && d.rect[2] >= x1 && d.rect[3] >= y1 &&
                d.size[0] / (d.rect[2] - d.rect[0]) >= Math.min(1, S.scale * dpr) * 0.95) {
                return; // the tiles we have cover the view at enough resolution
            }
            event = {type: "view", x0: round2(x0), y0: round2(y0), x1: round2(x1), y1: round2(y1),
                w: Math.round((x1 - x0) * S.scale * dpr), h: Math.round((y1 - y0) * S.scale * dpr)};
            key = [event.x0, event.y0, event.x1, event.y1, event.w, event.h].join(",");
        } else {
            event = {type: "view"};
            key = "";
            if (!S.detail && S.lastView === "") {
                return;
            }
        }
        if (key === S.lastView) {
            return;
        }
        S.lastView = key;
        send(event);
    }

    function checkerboard(ctx, x, y, w, h, step) {
        step = step || 10;
        ctx.fillStyle = "#3a3a3a";
        ctx.fillRect(x, y, w, h);
        ctx.fillStyle = "#4a4a4a";
        for (var yy = 0; yy < h; yy += step) {
            for (var xx = ((yy / step) % 2) * step; xx < w; xx += 2 * step) {
                ctx.fillRect(x + xx, y + yy, Math.min(step, w - xx), Math.min(step, h - yy));
            }
        }
    }

    function hexToRgb(hex) {
        var v = parseInt(hex.replace("#", ""), 16);
        return [(v >> 16) & 255, (v >> 8) & 255, v & 255];
    }

    // Draws the image (display copy, then the full-resolution detail over its region) with the current transform.
    function drawPhoto(ctx, dpr) {
        var img = S.image || S.localImage;
        if (!img) {
            return;
        }
        ctx.setTransform(dpr * S.scale, 0, 0, dpr * S.scale, dpr * S.ox, dpr * S.oy);
        ctx.imageSmoothingEnabled = S.scale * dpr < 2;
        ctx.drawImage(img, 0, 0, S.width || img.naturalWidth, S.height || img.naturalHeight);
        var d = S.detail;
        if (d && d.image && d.imageRev === S.imageRev) {
            ctx.drawImage(d.image, d.rect[0], d.rect[1], d.rect[2] - d.rect[0], d.rect[3] - d.rect[1]);
        }
    }

    // The mask as an alpha layer in *screen* pixels (display mask, then the detail mask over its region), so
    // the outline computed from it is one crisp device pixel at every zoom.
    function screenMask(cw, ch, dpr) {
        var source = S.provisional ? S.provisional.canvas : S.maskCanvas;
        if (!source) {
            return null;
        }
        var off = S.scratch || (S.scratch = document.createElement("canvas"));
        if (off.width !== cw || off.height !== ch) {
            off.width = cw;
            off.height = ch;
        }
        var c = off.getContext("2d", {willReadFrequently: true});
        c.setTransform(1, 0, 0, 1, 0, 0);
        c.clearRect(0, 0, cw, ch);
        c.setTransform(dpr * S.scale, 0, 0, dpr * S.scale, dpr * S.ox, dpr * S.oy);
        c.imageSmoothingEnabled = true;
        c.drawImage(source, 0, 0, S.width, S.height);
        var d = S.detail;
        if (!S.provisional && d && d.mask && d.imageRev === S.imageRev) {
            var fullRes = d.size[0] >= d.rect[2] - d.rect[0];
            c.save();
            c.beginPath();
            c.rect(d.rect[0], d.rect[1], d.rect[2] - d.rect[0], d.rect[3] - d.rect[1]);
            c.clip();
            c.clearRect(d.rect[0], d.rect[1], d.rect[2] - d.rect[0], d.rect[3] - d.rect[1]);
            // at 1:1 or more, show the mask's real pixels (square), below that a smooth edge
            c.imageSmoothingEnabled = !(fullRes && S.scale * dpr >= 2);
            c.drawImage(d.mask, d.rect[0], d.rect[1], d.rect[2] - d.rect[0], d.rect[3] - d.rect[1]);
            c.restore();
        }
        return off;
    }

    function overlayLayer(cw, ch, dpr) {
        var key = [cw, ch, S.scale, S.ox, S.oy, S.maskSeq, S.maskColor, S.maskOpacity,
            S.provisional ? S.provisional.seq : 0, S.detail ? S.detail.rect.join() : ""].join("|");
        if (S.overlayCache && S.overlayCache.key === key) {
            return S.overlayCache.canvas;
        }
        var maskLayer = screenMask(cw, ch, dpr);
        if (!maskLayer) {
            S.overlayCache = {key: key, canvas: null};
            return null;
        }
        // only the image's part of the screen can hold mask pixels
        var x0 = Math.max(0, Math.floor(dpr * S.ox) - 1), y0 = Math.max(0, Math.floor(dpr * S.oy) - 1);
        var x1 = Math.min(cw, Math.ceil(dpr * (S.ox + S.width * S.scale)) + 1);
        var y1 = Math.min(ch, Math.ceil(dpr * (S.oy + S.height * S.scale)) + 1);
        var out = S.overlayCanvas || (S.overlayCanvas = document.createElement("canvas"));
        if (out.width !== cw || out.height !== ch) {
            out.width = cw;
            out.height = ch;
        }
        var octx = out.getContext("2d");
        octx.clearRect(0, 0, cw, ch);
        if (x1 - x0 < 1 || y1 - y0 < 1) {
            S.overlayCache = {key: key, canvas: out};
            return out;
        }
        var w = x1 - x0, h = y1 - y0;
        var src = maskLayer.getContext("2d", {willReadFrequently: true}).getImageData(x0, y0, w, h).data;
        var img = octx.createImageData(w, h);
        var o = img.data;
        var tint = hexToRgb(S.maskColor), opacity = S.maskOpacity / 100;
        var line = S.maskColor.toLowerCase() === "#ffffff" ? [255, 214, 0] : [255, 255, 255];
        for (var y = 0; y < h; y++) {
            for (var x = 0; x < w; x++) {
                var i = (y * w + x) * 4;
                var m = src[i + 3];
                var inside = m >= 128;
                var up = y > 0 ? src[i - w * 4 + 3] >= 128 : inside;
                var down = y < h - 1 ? src[i + w * 4 + 3] >= 128 : inside;
                var left = x > 0 ? src[i - 1] >= 128 : inside;
                var right = x < w - 1 ? src[i + 7] >= 128 : inside;
                if (inside && (!up || !down || !left || !right)) {
                    o[i] = line[0];
                    o[i + 1] = line[1];
                    o[i + 2] = line[2];
                    o[i + 3] = 255;
                } else if (!inside && (up || down || left || right)) {
                    o[i] = o[i + 1] = o[i + 2] = 0;
                    o[i + 3] = 150; // a dark edge outside the line: visible on light and dark photos
                } else if (m) {
                    o[i] = tint[0];
                    o[i + 1] = tint[1];
                    o[i + 2] = tint[2];
                    o[i + 3] = Math.round(m * opacity);
                }
            }
        }
        octx.putImageData(img, x0, y0);
        S.overlayCache = {key: key, canvas: out};
        return out;
    }

    function draw() {
        if (!S.canvas) {
            return;
        }
        var dpr = window.devicePixelRatio || 1;
        var size = cssSize();
        var cw = Math.round(size.w * dpr), ch = Math.round(size.h * dpr);
        if (S.canvas.width !== cw || S.canvas.height !== ch) {
            S.canvas.width = cw;
            S.canvas.height = ch;
            S.canvas.style.width = size.w + "px";
            S.canvas.style.height = size.h + "px";
        }
        var ctx = S.ctx;
        ctx.setTransform(1, 0, 0, 1, 0, 0);
        ctx.clearRect(0, 0, cw, ch);
        if (!(S.image || S.localImage) || !S.width && !S.localImage) {
            return;
        }
        if (!S.width && S.localImage) { // a file just opened: show it while the server reads it
            S.width = S.localImage.naturalWidth;
            S.height = S.localImage.naturalHeight;
            fitView();
            drawPhoto(ctx, dpr);
            S.width = S.height = 0;
            return;
        }
        if (S.result) {
            drawCompare(ctx, dpr, size);
        } else {
            drawEditing(ctx, dpr, size, cw, ch);
        }
        drawDetections(ctx, dpr);
        drawCursor(ctx, dpr);
    }

    function drawEditing(ctx, dpr, size, cw, ch) {
        var W = S.width, H = S.height;
        var frameShown = S.mode === "frame" || (S.drag && S.drag.kind === "frame");
        if (frameShown) {
            drawFrameBackground(ctx, dpr);
        }
        if (S.view === "mask") {
            ctx.setTransform(dpr * S.scale, 0, 0, dpr * S.scale, dpr * S.ox, dpr * S.oy);
            ctx.fillStyle = "#000";
            ctx.fillRect(0, 0, W, H);
            var layer = screenMask(cw, ch, dpr);
            if (layer) {
                ctx.setTransform(1, 0, 0, 1, 0, 0);
                ctx.drawImage(layer, 0, 0);
            }
        } else if (S.view === "cutout") {
            ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
            ctx.save();
            ctx.beginPath();
            ctx.rect(S.ox, S.oy, W * S.scale, H * S.scale);
            ctx.clip();
            checkerboard(ctx, 0, 0, size.w, size.h);
            ctx.restore();
            var maskLayer = screenMask(cw, ch, dpr);
            if (maskLayer) {
                var cut = S.cutCanvas || (S.cutCanvas = document.createElement("canvas"));
                cut.width = cw;
                cut.height = ch;
                var cctx = cut.getContext("2d");
                drawPhoto(cctx, dpr);
                cctx.setTransform(1, 0, 0, 1, 0, 0);
                cctx.globalCompositeOperation = "destination-in";
                cctx.drawImage(maskLayer, 0, 0);
                cctx.globalCompositeOperation = "source-over";
                ctx.setTransform(1, 0, 0, 1, 0, 0);
                ctx.drawImage(cut, 0, 0);
            }
        } else {
            drawPhoto(ctx, dpr);
            ctx.setTransform(dpr * S.scale, 0, 0, dpr * S.scale, dpr * S.ox, dpr * S.oy);
            if (S.mode === "segments" && S.segmentImage) {
                ctx.globalAlpha = 0.45;
                ctx.drawImage(S.segmentImage, 0, 0, W, H);
                ctx.globalAlpha = 1;
            }
            if (S.hoverMask && S.mode === "select") {
                ctx.globalAlpha = 0.5 * S.maskOpacity / 100 + 0.1;
                ctx.drawImage(tinted(S.hoverMask), 0, 0, W, H);
                ctx.globalAlpha = 1;
            }
            var overlay = overlayLayer(cw, ch, dpr);
            if (overlay) {
                ctx.setTransform(1, 0, 0, 1, 0, 0);
                ctx.drawImage(overlay, 0, 0);
            }
        }
        if (frameShown) {
            drawFrame(ctx, dpr);
        }
        drawMarkers(ctx, dpr);
        drawDragPreview(ctx, dpr);
    }

    function tinted(maskCanvas) {
        if (maskCanvas.tintedFor === S.maskColor && maskCanvas.tinted) {
            return maskCanvas.tinted;
        }
        var c = document.createElement("canvas");
        c.width = maskCanvas.width;
        c.height = maskCanvas.height;
        var x = c.getContext("2d");
        x.drawImage(maskCanvas, 0, 0);
        x.globalCompositeOperation = "source-in";
        x.fillStyle = S.maskColor;
        x.fillRect(0, 0, c.width, c.height);
        maskCanvas.tinted = c;
        maskCanvas.tintedFor = S.maskColor;
        return c;
    }

    function drawMarkers(ctx, dpr) {
        ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
        var p = S.payload || {};
        if (p.box) {
            drawBox(ctx, p.box, "#00e676");
        }
        (p.points || []).forEach(function (pt) {
            var s = toScreen(pt[0], pt[1]);
            ctx.beginPath();
            ctx.arc(s.x, s.y, 6, 0, Math.PI * 2);
            ctx.fillStyle = pt[2] ? "#00c853" : "#ff1744";
            ctx.fill();
            ctx.lineWidth = 2;
            ctx.strokeStyle = "#fff";
            ctx.stroke();
            ctx.beginPath();
            ctx.moveTo(s.x - 3, s.y);
            ctx.lineTo(s.x + 3, s.y);
            if (pt[2]) {
                ctx.moveTo(s.x, s.y - 3);
                ctx.lineTo(s.x, s.y + 3);
            }
            ctx.stroke();
        });
    }

    function drawDragPreview(ctx, dpr) {
        var d = S.drag;
        ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
        if (d && d.kind === "box" && d.moved) {
            drawBox(ctx, [d.start.x, d.start.y, d.last.x, d.last.y], "#ffea00");
        }
        if (d && d.kind === "stroke" && d.points.length) {
            ctx.beginPath();
            d.points.forEach(function (pt, i) {
                var s = toScreen(pt[0], pt[1]);
                if (i) {
                    ctx.lineTo(s.x, s.y);
                } else {
                    ctx.moveTo(s.x, s.y);
                }
            });
            ctx.lineCap = ctx.lineJoin = "round";
            if (S.mode === "segments") {
                ctx.lineWidth = 3;
                ctx.strokeStyle = "rgba(255,234,0,0.8)";
            } else {
                ctx.lineWidth = Math.max(1, S.brushSize * S.scale);
                var rgb = d.erase ? [255, 23, 68] : hexToRgb(S.maskColor);
                ctx.strokeStyle = "rgba(" + rgb.join(",") + "," + (0.25 + 0.35 * S.hardness / 100) + ")";
            }
            ctx.stroke();
        }
    }

    function drawBox(ctx, b, color) {
        var a = toScreen(Math.min(b[0], b[2]), Math.min(b[1], b[3]));
        var z = toScreen(Math.max(b[0], b[2]), Math.max(b[1], b[3]));
        ctx.lineWidth = 2;
        ctx.setLineDash([6, 4]);
        ctx.strokeStyle = color;
        ctx.strokeRect(a.x, a.y, z.x - a.x, z.y - a.y);
        ctx.setLineDash([]);
    }

    function drawCursor(ctx, dpr) {
        if (!S.pointer || !S.hover || S.result || !(S.mode === "brush" || S.mode === "eraser") || !S.width) {
            return;
        }
        ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
        var r = Math.max(1, S.brushSize * S.scale / 2);
        ctx.beginPath();
        ctx.arc(S.pointer.x, S.pointer.y, r, 0, Math.PI * 2);
        ctx.lineWidth = 3;
        ctx.strokeStyle = "rgba(0,0,0,0.6)";
        ctx.stroke();
        ctx.lineWidth = 1.5;
        ctx.strokeStyle = S.mode === "eraser" ? "#ff5c7a" : "#fff";
        ctx.stroke();
        if (S.hardness < 100) {
            ctx.beginPath();
            ctx.setLineDash([3, 3]);
            ctx.arc(S.pointer.x, S.pointer.y, Math.max(1, r * S.hardness / 100), 0, Math.PI * 2);
            ctx.lineWidth = 1;
            ctx.strokeStyle = "rgba(255,255,255,0.8)";
            ctx.stroke();
            ctx.setLineDash([]);
        }
    }

    // ---- compare ----------------------------------------------------------------------------------------
    function drawCompare(ctx, dpr, size) {
        var r = S.result, o = r.offset || [0, 0];
        var rx = -o[0], ry = -o[1];
        ctx.setTransform(dpr * S.scale, 0, 0, dpr * S.scale, dpr * S.ox, dpr * S.oy);
        ctx.imageSmoothingEnabled = S.scale * dpr < 2;
        var after = S.resultImg;
        var splitX = rx + r.width * S.split;
        function drawBefore() {
            if (r.kind === "outpaint") {
                ctx.save();
                ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
                var a = toScreen(rx, ry);
                checkerboard(ctx, a.x, a.y, r.width * S.scale, r.height * S.scale);
                ctx.restore();
                ctx.setTransform(dpr * S.scale, 0, 0, dpr * S.scale, dpr * S.ox, dpr * S.oy);
            }
            drawPhoto(ctx, dpr);
            ctx.setTransform(dpr * S.scale, 0, 0, dpr * S.scale, dpr * S.ox, dpr * S.oy);
        }
        if (S.compare === "before" || !after) {
            drawBefore();
        } else if (S.compare === "after") {
            ctx.drawImage(after, rx, ry, r.width, r.height);
        } else {
            ctx.drawImage(after, rx, ry, r.width, r.height);
            ctx.save();
            ctx.beginPath();
            ctx.rect(rx, ry, splitX - rx, r.height);
            ctx.clip();
            drawBefore();
            ctx.restore();
            // the divider and its handle
            ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
            var top = toScreen(splitX, ry), bottom = toScreen(splitX, ry + r.height);
            ctx.fillStyle = "rgba(0,0,0,0.5)";
            ctx.fillRect(top.x - 2, top.y, 4, bottom.y - top.y);
            ctx.fillStyle = "#fff";
            ctx.fillRect(top.x - 1, top.y, 2, bottom.y - top.y);
            var mid = Math.min(Math.max((top.y + bottom.y) / 2, 20), size.h - 20);
            ctx.beginPath();
            ctx.arc(top.x, mid, 13, 0, Math.PI * 2);
            ctx.fill();
            ctx.strokeStyle = "rgba(0,0,0,0.5)";
            ctx.lineWidth = 1;
            ctx.stroke();
            ctx.fillStyle = "#222";
            ctx.beginPath();
            ctx.moveTo(top.x - 4, mid - 5);
            ctx.lineTo(top.x - 9, mid);
            ctx.lineTo(top.x - 4, mid + 5);
            ctx.moveTo(top.x + 4, mid - 5);
            ctx.lineTo(top.x + 9, mid);
            ctx.lineTo(top.x + 4, mid + 5);
            ctx.fill();
            label(ctx, "Before", Math.max(top.x - 8, 60), Math.max(top.y + 8, 8), "right");
            label(ctx, "After", Math.min(top.x + 8, size.w - 60), Math.max(top.y + 8, 8), "left");
        }
        if (S.compare !== "split") {
            ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
            label(ctx, S.compare === "before" || !after ? "Before" : "After", 12, 44, "left");
        }
    }

    function label(ctx, text, x, y, align) {
        ctx.font = "600 12px system-ui, sans-serif";
        var w = ctx.measureText(text).width + 12;
        var left = align === "right" ? x - w : x;
        ctx.fillStyle = "rgba(0,0,0,0.6)";
        ctx.fillRect(left, y, w, 20);
        ctx.fillStyle = "#fff";
        ctx.textBaseline = "middle";
        ctx.fillText(text, left + 6, y + 10);
        return {x: left, y: y, w: w, h: 20};
    }

    // ---- outpaint frame ---------------------------------------------------------------------------------
    function currentFrame() {
        return S.drag && S.drag.kind === "frame" ? S.drag.frame : S.frame;
    }

    function frameRect(f) {
        return {x0: -f[0], y0: -f[2], x1: S.width + f[1], y1: S.height + f[3]};
    }

    function drawFrameBackground(ctx, dpr) {
        var f = currentFrame();
        if (!(f[0] || f[1] || f[2] || f[3])) {
            return;
        }
        var r = frameRect(f);
        var a = toScreen(r.x0, r.y0), z = toScreen(r.x1, r.y1);
        ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
        checkerboard(ctx, a.x, a.y, z.x - a.x, z.y - a.y, 12);
    }

    function drawFrame(ctx, dpr) {
        var f = currentFrame();
        var r = frameRect(f);
        var a = toScreen(r.x0, r.y0), z = toScreen(r.x1, r.y1);
        ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
        var live = S.drag && S.drag.kind === "frame";
        var plan = S.framePlan;
        if (!live && plan && plan.tiles && plan.tiles.length <= 600) {
            plan.tiles.forEach(function (t, i) {
                var p0 = toScreen(t[0], t[1]), p1 = toScreen(t[2], t[3]);
                ctx.strokeStyle = PASS_COLOURS[t[4] % PASS_COLOURS.length];
                ctx.globalAlpha = 0.9;
                ctx.lineWidth = 1.5;
                ctx.setLineDash(t[5] ? [4, 3] : []);
                ctx.strokeRect(p0.x + 0.5, p0.y + 0.5, p1.x - p0.x - 1, p1.y - p0.y - 1);
                ctx.setLineDash([]);
                ctx.fillStyle = PASS_COLOURS[t[4] % PASS_COLOURS.length];
                ctx.font = "600 10px system-ui, sans-serif";
                ctx.textBaseline = "top";
                ctx.fillText(String(i + 1), p0.x + 4, p0.y + 3);
                ctx.globalAlpha = 1;
            });
        }
        // the frame itself and its handles
        ctx.lineWidth = 3;
        ctx.strokeStyle = "rgba(0,0,0,0.6)";
        ctx.strokeRect(a.x, a.y, z.x - a.x, z.y - a.y);
        ctx.lineWidth = 1.5;
        ctx.strokeStyle = "#fff";
        ctx.strokeRect(a.x, a.y, z.x - a.x, z.y - a.y);
        var mx = (a.x + z.x) / 2, my = (a.y + z.y) / 2;
        [[a.x, a.y], [mx, a.y], [z.x, a.y], [a.x, my], [z.x, my], [a.x, z.y], [mx, z.y], [z.x, z.y]].forEach(function (h) {
            ctx.fillStyle = "#fff";
            ctx.fillRect(h[0] - 5, h[1] - 5, 10, 10);
            ctx.strokeStyle = "#000";
            ctx.lineWidth = 1;
            ctx.strokeRect(h[0] - 5, h[1] - 5, 10, 10);
        });
        var w = S.width + f[0] + f[1], h = S.height + f[2] + f[3];
        var text = w + " × " + h;
        if (!live && plan) {
            text += plan.error ? " · " + plan.error : " · " + plan.tiles.length + " tile" + (plan.tiles.length === 1 ? "" : "s") +
                " · " + plan.passes + " pass" + (plan.passes === 1 ? "" : "es");
        } else if (!(f[0] || f[1] || f[2] || f[3])) {
            text = "Drag an edge outwards to extend the picture";
        }
        label(ctx, text, Math.max(4, a.x), Math.min(z.y + 6, cssSize().h - 24), "left");
    }

    // which frame sides (left, right, top, bottom) a screen point grabs, or null
    function frameHit(clientX, clientY) {
        var rect = S.canvas.getBoundingClientRect();
        var x = clientX - rect.left, y = clientY - rect.top;
        var r = frameRect(S.frame);
        var a = toScreen(r.x0, r.y0), z = toScreen(r.x1, r.y1);
        var within = x > a.x - HANDLE_PX && x < z.x + HANDLE_PX && y > a.y - HANDLE_PX && y < z.y + HANDLE_PX;
        if (!within) {
            return null;
        }
        var sides = {
            left: Math.abs(x - a.x) <= HANDLE_PX, right: Math.abs(x - z.x) <= HANDLE_PX,
            top: Math.abs(y - a.y) <= HANDLE_PX, bottom: Math.abs(y - z.y) <= HANDLE_PX
        };
        if (sides.left && sides.right) {
            sides.left = x < (a.x + z.x) / 2;
            sides.right = !sides.left;
        }
        if (sides.top && sides.bottom) {
            sides.top = y < (a.y + z.y) / 2;
            sides.bottom = !sides.top;
        }
        return sides.left || sides.right || sides.top || sides.bottom ? sides : null;
    }

    function snap(v) {
        return Math.max(0, Math.round(v / FRAME_SNAP) * FRAME_SNAP);
    }

    function frameCursor(sides) {
        if (!sides) {
            return "";
        }
        var h = sides.left || sides.right, v = sides.top || sides.bottom;
        if (h && v) {
            return (sides.left && sides.top) || (sides.right && sides.bottom) ? "nwse-resize" : "nesw-resize";
        }
        return h ? "ew-resize" : "ns-resize";
    }

    // ---- detections (Select by text) --------------------------------------------------------------------
    // Python's payload: text_boxes [{index, box, label, score, kept, ...}] and detectors {available, message};
    // events: detect {text}, keep {index}, drop {index}.
    function updateDetect(p) {
        var box = role("detect");
        if (!box || !("detectors" in p)) {
            return; // this server has no Select by text
        }
        var info = p.detectors || {};
        box.hidden = false;
        var input = role("detect-text"), button = box.querySelector("[data-action='detect']");
        input.disabled = button.disabled = !info.available;
        box.title = info.message || "";
        if (p.text && p.text.text && document.activeElement !== input) {
            input.value = p.text.text;
        }
    }

    // Each box has a chip above it: "✓"/"✕" toggles keep / drop, the label ("cat 0.87") puts the box in focus
    // (the candidate strip shows SAM's candidates for it).
    function drawDetections(ctx, dpr) {
        S.chipRects = [];
        if (S.result || !S.detections.length) {
            return;
        }
        ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
        var order = S.detections.slice().sort(function (u, v) {
            return (u.index === S.textFocus) - (v.index === S.textFocus); // the focused one on top
        });
        order.forEach(function (d) {
            var b = d.box, a = toScreen(b[0], b[1]), z = toScreen(b[2], b[3]);
            var kept = d.kept !== false, focused = d.index === S.textFocus;
            ctx.lineWidth = focused ? 3 : 2;
            ctx.setLineDash(kept ? [] : [5, 4]);
            ctx.strokeStyle = focused ? "#ffd60a" : (kept ? "#30d158" : "rgba(200,200,200,0.8)");
            ctx.strokeRect(a.x, a.y, z.x - a.x, z.y - a.y);
            ctx.setLineDash([]);
            var y = Math.max(0, a.y - 21);
            var toggle = label(ctx, kept ? "✓" : "✕", a.x, y, "left");
            ctx.fillStyle = kept ? "#30d158" : "rgba(120,120,120,0.9)";
            ctx.fillRect(toggle.x, toggle.y + toggle.h - 2, toggle.w, 2);
            var text = (d.label || "object") + (typeof d.score === "number" ? " " + d.score.toFixed(2) : "");
            var name = label(ctx, text, toggle.x + toggle.w + 1, y, "left");
            if (focused) {
                ctx.strokeStyle = "#ffd60a";
                ctx.lineWidth = 1.5;
                ctx.strokeRect(name.x + 0.75, name.y + 0.75, name.w - 1.5, name.h - 1.5);
            }
            S.chipRects.push({x: toggle.x, y: y, w: toggle.w + 1 + name.w, h: toggle.h, toggleW: toggle.w + 1,
                index: d.index, kept: kept, text: text, focused: focused});
        });
    }

    function detectText() {
        var text = role("detect-text").value.trim();
        if (text && S.width) {
            setBusy("detect", {text: "Finding “" + text + "”…"});
            var event = {type: "detect", text: text};
            // thresholds and detector from the box's options (javascript/segfill_text.js), when set
            var options = window.SegFillText && window.SegFillText.options ? window.SegFillText.options() : {};
            Object.keys(options || {}).forEach(function (k) {
                event[k] = options[k];
            });
            send(event);
        }
    }

    function chipAt(clientX, clientY) {
        var rect = S.canvas.getBoundingClientRect();
        var x = clientX - rect.left, y = clientY - rect.top;
        for (var i = S.chipRects.length - 1; i >= 0; i--) {
            var c = S.chipRects[i];
            if (x >= c.x && x <= c.x + c.w && y >= c.y && y <= c.y + c.h) {
                return c;
            }
        }
        return null;
    }

    // ---- pointer input ----------------------------------------------------------------------------------
    function canvasPoint(e) {
        var rect = S.canvas.getBoundingClientRect();
        return {x: e.clientX - rect.left, y: e.clientY - rect.top};
    }

    function onPointerDown(e) {
        closePopups();
        if (!S.width) {
            if (e.button === 0) {
                openFilePicker();
            }
            return;
        }
        S.root.focus({preventScroll: true});
        endHover(); // a press answers itself (a click's own preview); a hover waits for the next move
        var pt = toImage(e.clientX, e.clientY);
        var pan = S.mode === "pan" || e.button === 1 || S.spaceDown || (e.button === 0 && e.altKey);
        if (pan) {
            S.drag = {kind: "pan", sx: e.clientX, sy: e.clientY, ox: S.ox, oy: S.oy};
        } else if (S.result) {
            if (e.button === 0 && S.compare === "split") {
                S.drag = {kind: "split"};
                moveSplit(e);
            } else {
                return;
            }
        } else if (isBusy() && S.busyMap.server) {
            return; // the embedding is being computed; the photo is there to look at
        } else if (e.button === 0 && chipAt(e.clientX, e.clientY)) {
            var chip = chipAt(e.clientX, e.clientY);
            if (e.clientX - S.canvas.getBoundingClientRect().left < chip.x + chip.toggleW) {
                send({type: chip.kept ? "drop" : "keep", index: chip.index});
            } else {
                send({type: "text_focus", index: chip.index});
            }
            return;
        } else if (S.mode === "frame") {
            var sides = frameHit(e.clientX, e.clientY);
            if (sides) {
                S.drag = {kind: "frame", sides: sides, start: pt, base: S.frame.slice(), frame: S.frame.slice()};
            } else if (insideImage(pt)) {
                S.drag = {kind: "frame", move: true, start: pt, base: S.frame.slice(), frame: S.frame.slice()};
            } else {
                S.drag = {kind: "pan", sx: e.clientX, sy: e.clientY, ox: S.ox, oy: S.oy};
            }
        } else if (S.mode === "brush" || S.mode === "eraser" || S.mode === "segments") {
            if (!insideImage(pt) && S.mode === "segments") {
                return;
            }
            var cp = clampToImage(pt);
            S.drag = {kind: "stroke", erase: S.mode === "eraser", remove: e.button === 2, points: [[cp.x, cp.y]]};
        } else if (e.button === 0 || e.button === 2) {
            if (!insideImage(pt)) {
                return;
            }
            S.drag = {kind: "box", button: e.button, start: pt, last: pt, sx: e.clientX, sy: e.clientY, moved: false};
        } else {
            return;
        }
        S.canvas.setPointerCapture(e.pointerId);
        e.preventDefault();
    }

    function moveSplit(e) {
        var r = S.result, o = r.offset || [0, 0];
        var pt = toImage(e.clientX, e.clientY);
        S.split = Math.min(1, Math.max(0, (pt.x + o[0]) / r.width));
        draw();
    }

    function onPointerMove(e) {
        S.pointer = canvasPoint(e);
        var d = S.drag;
        if (!d) {
            if (S.mode === "frame" && S.width && !S.result) {
                S.canvas.style.cursor = frameCursor(frameHit(e.clientX, e.clientY)) ||
                    (insideImage(toImage(e.clientX, e.clientY)) ? "move" : "");
            } else {
                S.canvas.style.cursor = S.chipRects.length && chipAt(e.clientX, e.clientY) ? "pointer" : "";
            }
            if (S.mode === "brush" || S.mode === "eraser") {
                draw();
            }
            scheduleHover(e);
            return;
        }
        if (d.kind === "pan") {
            S.ox = d.ox + (e.clientX - d.sx);
            S.oy = d.oy + (e.clientY - d.sy);
            S.userZoomed = true;
            scheduleViewReport();
        } else if (d.kind === "split") {
            moveSplit(e);
            return;
        } else if (d.kind === "frame") {
            var pt = toImage(e.clientX, e.clientY);
            var dx = pt.x - d.start.x, dy = pt.y - d.start.y;
            var f = d.base.slice();
            if (d.move) { // move the photo inside the frame: the canvas keeps its size
                var total = [f[0] + f[1], f[2] + f[3]];
                f[0] = Math.min(total[0], snap(f[0] + dx));
                f[1] = total[0] - f[0];
                f[2] = Math.min(total[1], snap(f[2] + dy));
                f[3] = total[1] - f[2];
            } else {
                if (d.sides.left) {
                    f[0] = snap(d.base[0] - dx);
                }
                if (d.sides.right) {
                    f[1] = snap(d.base[1] + dx);
                }
                if (d.sides.top) {
                    f[2] = snap(d.base[2] - dy);
                }
                if (d.sides.bottom) {
                    f[3] = snap(d.base[3] + dy);
                }
            }
            d.frame = f;
        } else if (d.kind === "stroke") {
            var cp = clampToImage(toImage(e.clientX, e.clientY));
            var last = d.points[d.points.length - 1];
            if (Math.abs(cp.x - last[0]) + Math.abs(cp.y - last[1]) >= 1 / S.scale) {
                d.points.push([cp.x, cp.y]);
            }
        } else if (d.kind === "box") {
            d.last = clampToImage(toImage(e.clientX, e.clientY));
            if (Math.abs(e.clientX - d.sx) + Math.abs(e.clientY - d.sy) > CLICK_SLOP && d.button === 0) {
                d.moved = true;
            }
        }
        draw();
    }

    function round2(v) {
        return Math.round(v * 100) / 100;
    }

    function onPointerUp() {
        var d = S.drag;
        S.drag = null;
        if (!d) {
            return;
        }
        if (d.kind === "box") {
            if (d.moved) {
                var box = {type: "box", x0: round2(d.start.x), y0: round2(d.start.y), x1: round2(d.last.x), y1: round2(d.last.y)};
                emit("box", box);
                send(box);
            } else {
                var point = {type: "point", x: round2(d.start.x), y: round2(d.start.y), label: d.button === 2 ? 0 : 1};
                emit("point", point);
                sendAfter(askProvisional(point), point);
            }
        } else if (d.kind === "stroke") {
            var pts = d.points.map(function (p) {
                return [round2(p[0]), round2(p[1])];
            });
            if (S.mode === "segments") {
                send({type: "segment", points: pts, remove: d.remove, thickness: Math.max(1, 3 / S.scale)});
            } else {
                send({type: "stroke", points: pts, radius: round2(Math.max(0.5, S.brushSize / 2)), erase: d.erase,
                    hardness: round2(S.hardness / 100)});
            }
        } else if (d.kind === "frame") {
            if (String(d.frame) !== String(S.frame)) {
                S.frame = d.frame.slice();
                S.framePlan = null;
                send({type: "frame", left: d.frame[0], right: d.frame[1], top: d.frame[2], bottom: d.frame[3]});
            }
        }
        draw();
    }

    function onWheel(e) {
        if (!S.width) {
            return;
        }
        e.preventDefault();
        endHover(); // zooming, not pointing: the preview comes back with the next rest of the pointer
        var p = canvasPoint(e);
        zoomAt(Math.exp(-e.deltaY * 0.0015), p.x, p.y);
    }

    // ---- hover preview and instant clicks (a preview provider plugs in here) ----------------------------
    function promptInfo(extra) {
        var p = S.payload || {};
        var info = {points: (p.points || []).slice(), box: p.box || null, width: S.width, height: S.height,
            imageRev: S.imageRev, model: p.model || ""};
        Object.keys(extra || {}).forEach(function (k) {
            info[k] = extra[k];
        });
        return info;
    }

    function scheduleHover(e) {
        if (!S.provider || S.mode !== "select" || S.result || !S.width || S.drag) {
            endHover();
            return;
        }
        var pt = toImage(e.clientX, e.clientY);
        if (S.hoverTimer) {
            clearTimeout(S.hoverTimer);
        }
        if (!insideImage(pt)) {
            endHover();
            return;
        }
        var wait = Math.max(HOVER_DELAY_MS, HOVER_INTERVAL_MS - (Date.now() - S.lastHoverAt));
        S.hoverTimer = setTimeout(function () {
            S.hoverTimer = null;
            S.lastHoverAt = Date.now();
            var seq = ++S.hoverSeq;
            Promise.resolve(S.provider(promptInfo({kind: "hover", x: round2(pt.x), y: round2(pt.y), label: 1})))
                .then(function (mask) {
                    if (seq === S.hoverSeq && S.mode === "select") {
                        S.hoverMask = mask ? maskCanvasFrom(mask) : null;
                        draw();
                        if (mask) {
                            emit("preview", {kind: "hover", at: performance.now()});
                        }
                    }
                }).catch(function () { /* a preview is optional */ });
        }, wait);
    }

    // the pointer left the picture: drop its preview, and any answer still on its way
    function endHover() {
        if (S.hoverTimer) {
            clearTimeout(S.hoverTimer);
            S.hoverTimer = null;
        }
        S.hoverSeq += 1;
        if (S.hoverMask) {
            S.hoverMask = null;
            draw();
        }
    }

    // The click's event goes to Python once its preview is drawn (at most PREVIEW_FIRST_MS later): on a CPU the
    // preview and the server's own decoder would otherwise compete for the same cores and both arrive later.
    var PREVIEW_FIRST_MS = 400;

    function sendAfter(preview, event) {
        if (!preview) {
            send(event);
            return;
        }
        // queued now (what the user does next keeps its order), sent when the preview is drawn
        var hold = {};
        S.hold = hold;
        var release = function () {
            if (S.hold === hold) {
                S.hold = null;
                flush();
            }
        };
        setTimeout(release, PREVIEW_FIRST_MS);
        preview.then(release, release);
        send(event);
    }

    function askProvisional(point) {
        S.hoverMask = null;
        if (!S.provider) {
            return null;
        }
        var info = promptInfo({kind: "click", x: point.x, y: point.y, label: point.label});
        info.points.push([point.x, point.y, point.label]);
        var rev = S.rev;
        return Promise.resolve(S.provider(info)).then(function (mask) {
            if (mask && S.rev === rev) {
                showMask(mask, {rev: rev});
                emit("preview", {kind: "click", at: performance.now()});
            }
        }).catch(function () { /* the server's answer follows anyway */ });
    }

    function showMask(mask, options) {
        options = options || {};
        var canvas = maskCanvasFrom(mask, !!options.alpha);
        if (!canvas) {
            S.provisional = null;
        } else {
            S.provisional = {canvas: canvas, seq: (S.provisional ? S.provisional.seq : 0) + 1,
                rev: options.rev === undefined ? S.rev : options.rev};
        }
        draw();
    }

    // ---- keyboard ---------------------------------------------------------------------------------------
    function isActive() {
        if (!S.root || !S.root.isConnected || S.root.offsetParent === null) {
            return false;
        }
        var focused = document.activeElement;
        var typing = focused && (focused.tagName === "TEXTAREA" || focused.tagName === "SELECT" ||
            (focused.tagName === "INPUT" && focused.type !== "range"));
        return !typing && (S.hover || S.root.contains(focused));
    }

    function onKeyDown(e) {
        if (e.key === " " && S.hover) {
            S.spaceDown = true;
        }
        if (!isActive()) {
            return;
        }
        var key = e.key.toLowerCase();
        var ctrl = e.ctrlKey || e.metaKey;
        var help = role("help");
        if (ctrl && key === "z") {
            if (!isBusy()) {
                send({type: e.shiftKey ? "redo" : "undo"});
            }
        } else if (ctrl && key === "y") {
            if (!isBusy()) {
                send({type: "redo"});
            }
        } else if (ctrl || e.altKey) {
            return;
        } else if (key === "escape") {
            if (help && !help.hidden) {
                help.hidden = true;
            } else if (closePopups()) {
                /* closed a menu */
            } else if (S.result) {
                send({type: "discard"});
            } else {
                send({type: "clear"});
            }
        } else if (key === "enter") {
            send({type: S.result ? "accept" : "commit"});
        } else if (e.key === "?") {
            toggleHelp();
        } else if (key === "0") {
            fitView();
            draw();
            scheduleViewReport();
        } else if (key === "1") {
            var size = cssSize();
            zoomAt(1 / S.scale / (window.devicePixelRatio || 1), size.w / 2, size.h / 2);
        } else if (key === "+" || key === "=") {
            zoomAt(1.25, cssSize().w / 2, cssSize().h / 2);
        } else if (key === "-" || key === "_") {
            zoomAt(0.8, cssSize().w / 2, cssSize().h / 2);
        } else if (e.key === "[" || e.key === "{") {
            if (e.shiftKey) {
                setHardness(S.hardness - 10);
            } else {
                setBrushSize(S.brushSize / 1.2);
            }
        } else if (e.key === "]" || e.key === "}") {
            if (e.shiftKey) {
                setHardness(S.hardness + 10);
            } else {
                setBrushSize(S.brushSize * 1.2);
            }
        } else if (key === "c" && S.result) {
            setCompare(COMPARES[(COMPARES.indexOf(S.compare) + 1) % COMPARES.length]);
        } else if (key === "m") {
            setView(VIEWS[(VIEWS.indexOf(S.view) + 1) % VIEWS.length]);
        } else if (MODES[key]) {
            setMode(MODES[key], true);
        } else if (key === " ") {
            /* pan modifier */
        } else {
            return;
        }
        e.preventDefault();
        e.stopPropagation();
    }

    function onKeyUp(e) {
        if (e.key === " ") {
            S.spaceDown = false;
        }
    }

    // ---- toolbar, menus, popovers -----------------------------------------------------------------------
    function onToolbar(e) {
        var colour = e.target.closest("[data-color]");
        if (colour && S.root.contains(colour)) {
            S.maskColor = colour.getAttribute("data-color");
            styleChanged();
            return;
        }
        var b = e.target.closest("button[data-action]");
        if (!b || !S.root.contains(b)) {
            return;
        }
        var action = b.getAttribute("data-action");
        if (action !== "menu" && action !== "mask-style") {
            closePopups();
        }
        if (action === "mode") {
            setMode(b.getAttribute("data-mode"), true);
        } else if (action === "view") {
            setView(b.getAttribute("data-view"));
        } else if (action === "compare") {
            setCompare(b.getAttribute("data-compare"));
        } else if (action === "fit") {
            fitView();
            draw();
            scheduleViewReport();
        } else if (action === "open") {
            openFilePicker();
        } else if (action === "help") {
            toggleHelp();
        } else if (action === "menu" || action === "mask-style") {
            togglePopup(action === "menu" ? "menu" : "mask-style");
        } else if (action === "download") {
            send({type: "download", what: b.getAttribute("data-what")});
        } else if (action === "download-result") {
            send({type: "download", what: "result"});
        } else if (action === "result-info") {
            var info = role("result-info");
            info.hidden = !info.hidden;
        } else if (action === "detect") {
            detectText();
        } else if (action === "cancel-task") {
            cancelTask();
        } else if (action === "undo" || action === "redo") {
            if (!isBusy()) {
                send({type: action});
            }
        } else {
            send({type: action});
        }
    }

    function togglePopup(name) {
        var el = role(name);
        var open = el.hidden;
        closePopups();
        el.hidden = !open;
    }

    function closePopups() {
        var closed = false;
        ["menu", "mask-style"].forEach(function (name) {
            var el = role(name);
            if (el && !el.hidden) {
                el.hidden = true;
                closed = true;
            }
        });
        return closed;
    }

    function toggleHelp() {
        var el = role("help");
        if (el) {
            el.hidden = !el.hidden;
        }
    }

    function markActive(group, attr, value) {
        var g = S.root.querySelector('[data-group="' + group + '"]');
        if (g) {
            Array.prototype.forEach.call(g.querySelectorAll("button"), function (btn) {
                btn.classList.toggle("active", btn.getAttribute(attr) === value);
            });
        }
    }

    function setMode(mode, fromUser) {
        if (fromUser && S.result) {
            send({type: "discard"}); // picking a tool goes back to editing; the result stays in the strip
        }
        var wasFrame = S.mode === "frame";
        S.mode = mode;
        S.hoverMask = null;
        S.root.setAttribute("data-segfill-mode", mode);
        Array.prototype.forEach.call(S.root.querySelectorAll('.segfill-tools button[data-mode]'), function (btn) {
            btn.classList.toggle("active", btn.getAttribute("data-mode") === mode);
        });
        Array.prototype.forEach.call(S.root.querySelectorAll("[data-options]"), function (el) {
            el.hidden = el.getAttribute("data-options").split(" ").indexOf(mode) < 0;
        });
        if (mode === "segments" && S.width && !S.segmentImage) {
            setBusy("segment_map", {text: "Computing the segment map…"});
            send({type: "segment_map"});
        }
        if ((mode === "frame") !== wasFrame && !S.userZoomed) {
            fitView();
        } else if ((mode === "frame") !== wasFrame) {
            fitView(); // the frame needs room around the photo
        }
        emit("mode", mode);
        draw();
    }

    function setView(view) {
        S.view = view;
        markActive("view", "data-view", view);
        draw();
    }

    function setCompare(mode) {
        S.compare = mode;
        markActive("compare", "data-compare", mode);
        draw();
    }

    function setBrushSize(size) {
        S.brushSize = Math.max(1, Math.min(512, Math.round(size)));
        var input = role("brush-size");
        if (input) {
            input.value = String(S.brushSize);
        }
        var out = role("brush-size-value");
        if (out) {
            out.textContent = String(S.brushSize);
        }
        saveSettings();
        draw();
    }

    function setHardness(value) {
        S.hardness = Math.max(0, Math.min(100, Math.round(value / 5) * 5));
        var input = role("brush-hardness");
        if (input) {
            input.value = String(S.hardness);
        }
        if (input) {
            input.title = "Hardness " + S.hardness + " %";
        }
        saveSettings();
        draw();
    }

    function styleChanged() {
        var swatch = S.root.querySelector(".segfill-swatch");
        if (swatch) {
            swatch.style.background = S.maskColor;
            swatch.style.opacity = String(0.35 + 0.65 * S.maskOpacity / 100);
        }
        Array.prototype.forEach.call(S.root.querySelectorAll("[data-color]"), function (btn) {
            btn.classList.toggle("active", btn.getAttribute("data-color") === S.maskColor);
        });
        var opacity = role("mask-opacity");
        if (opacity) {
            opacity.value = String(S.maskOpacity);
        }
        saveSettings();
        draw();
    }

    // ---- opening images ---------------------------------------------------------------------------------
    function openFilePicker() {
        var input = role("file");
        if (input) {
            input.value = "";
            input.click();
        }
    }

    function gradioFileInput() {
        var host = byId("segfill_file");
        return host ? host.querySelector("input[type=file]") : null;
    }

    function openFile(file) {
        if (!file) {
            return;
        }
        var input = gradioFileInput();
        if (!input) {
            setStatus("SegFill: the upload channel is missing; reload the page.", true);
            return;
        }
        setBusy("server", {text: "Opening " + file.name + "…"});
        setStatus("", false);
        if (!S.width && /^image\//.test(file.type || "")) { // an empty canvas shows the photo at once
            var url = URL.createObjectURL(file);
            loadImage(url).then(function (img) {
                if (!S.width) {
                    S.localImage = img;
                    updateButtons(S.payload || {});
                    draw();
                }
            }).catch(function () { /* the server says what is wrong with the file */ });
        }
        var dt = new DataTransfer();
        dt.items.add(file);
        input.files = dt.files;
        input.dispatchEvent(new Event("change", {bubbles: true}));
        emit("image", {name: file.name, size: file.size, type: file.type});
    }

    function firstImageFile(list) {
        for (var i = 0; list && i < list.length; i++) {
            var item = list[i];
            var file = item.getAsFile ? (item.kind === "file" ? item.getAsFile() : null) : item;
            if (file) {
                return file;
            }
        }
        return null;
    }

    // ---- layout: the canvas fills the window's height below its own top --------------------------------
    function layoutStage() {
        var stage = role("stage");
        if (!stage || S.root.offsetParent === null) {
            return;
        }
        var top = stage.getBoundingClientRect().top + window.scrollY;
        var bottom = S.root.querySelector(".segfill-bottombar");
        var below = bottom ? bottom.getBoundingClientRect().height + 10 : 60;
        var height = Math.max(300, Math.min(1600, Math.floor(window.innerHeight - top - below - 8)));
        if (Math.abs(stage.clientHeight - height) > 1) {
            stage.style.height = height + "px";
        }
        // the panel beside the canvas scrolls inside itself (its job buttons stick to its bottom), so the page
        // never has to: with a tall WebUI header (Forge) everything stays in the window
        var panel = byId("segfill_panel");
        if (panel && panel.offsetParent !== null) {
            var panelTop = panel.getBoundingClientRect().top + window.scrollY;
            var room = Math.max(320, Math.floor(window.innerHeight - panelTop - 8));
            if (panel.style.maxHeight !== room + "px") {
                panel.style.maxHeight = room + "px";
            }
        }
    }

    // ---- set-up -----------------------------------------------------------------------------------------
    function ensureInit() {
        var root = byId("segfill_canvas_root");
        if (!root || root === S.root) {
            return;
        }
        S.root = root;
        S.canvas = root.querySelector("canvas.segfill-canvas");
        S.ctx = S.canvas.getContext("2d");
        S.canvas.addEventListener("pointerdown", onPointerDown);
        S.canvas.addEventListener("pointermove", onPointerMove);
        S.canvas.addEventListener("pointerleave", endHover);
        S.canvas.addEventListener("pointerup", onPointerUp);
        S.canvas.addEventListener("pointercancel", onPointerUp);
        S.canvas.addEventListener("wheel", onWheel, {passive: false});
        S.canvas.addEventListener("contextmenu", function (e) {
            e.preventDefault();
        });
        root.addEventListener("mouseenter", function () {
            S.hover = true;
        });
        root.addEventListener("mouseleave", function () {
            S.hover = false;
            S.pointer = null;
            endHover();
            draw(); // the brush cursor goes too
        });
        root.addEventListener("click", onToolbar);
        var size = role("brush-size"), hardness = role("brush-hardness"), opacity = role("mask-opacity");
        size.addEventListener("input", function () {
            setBrushSize(Number(size.value));
        });
        hardness.addEventListener("input", function () {
            setHardness(Number(hardness.value));
        });
        opacity.addEventListener("input", function () {
            S.maskOpacity = Number(opacity.value);
            styleChanged();
        });
        var file = role("file");
        file.addEventListener("change", function () {
            openFile(file.files && file.files[0]);
        });
        var stage = role("stage");
        stage.addEventListener("dragover", function (e) {
            e.preventDefault();
            stage.classList.add("segfill-dragover");
        });
        stage.addEventListener("dragleave", function () {
            stage.classList.remove("segfill-dragover");
        });
        stage.addEventListener("drop", function (e) {
            e.preventDefault();
            stage.classList.remove("segfill-dragover");
            openFile(firstImageFile(e.dataTransfer && e.dataTransfer.files));
        });
        role("detect-text").addEventListener("keydown", function (e) {
            if (e.key === "Enter") {
                detectText();
            }
        });
        setBrushSize(S.brushSize);
        setHardness(S.hardness);
        styleChanged();
        setMode(S.mode);
        if (window.ResizeObserver) {
            new ResizeObserver(function () {
                if (!S.userZoomed) {
                    fitView();
                }
                S.overlayCache = null;
                draw();
            }).observe(S.canvas.parentElement);
            new ResizeObserver(layoutStage).observe(root);
        }
        layoutStage();
        root.setAttribute("data-segfill-ready", "1");
        if (S.payload) {
            applyPayload(S.payload);
        }
    }

    document.addEventListener("keydown", onKeyDown, true);
    document.addEventListener("keyup", onKeyUp, true);
    window.addEventListener("resize", function () {
        if (S.root) {
            layoutStage();
        }
    });
    document.addEventListener("paste", function (e) {
        if (!S.root || S.root.offsetParent === null) {
            return;
        }
        var focused = document.activeElement;
        if (focused && (focused.tagName === "TEXTAREA" || focused.tagName === "INPUT") && !S.root.contains(focused)) {
            return;
        }
        var file = firstImageFile(e.clipboardData && e.clipboardData.items);
        if (file && /^image\//.test(file.type)) {
            e.preventDefault();
            openFile(new File([file], file.name && file.name !== "image.png" ? file.name : "pasted image.png", {type: file.type}));
        }
    });

    // The tab may be built lazily (WebUI) or after this script (standalone): watch for our root.
    function watch() {
        ensureInit();
        var target = document.body || document.documentElement;
        if (window.MutationObserver && target) {
            new MutationObserver(function () {
                if (!S.root || !S.root.isConnected) {
                    ensureInit();
                }
            }).observe(target, {childList: true, subtree: true});
        }
    }

    if (typeof onUiLoaded === "function") {
        onUiLoaded(watch); // WebUI / Forge
    } else if (document.readyState === "loading") {
        document.addEventListener("DOMContentLoaded", watch);
    } else {
        watch();
    }

    // ---- send to img2img inpaint (WebUI only) -----------------------------------------------------------
    function dataUrlToFile(url, name) {
        var parts = url.split(",");
        var mime = parts[0].match(/:(.*?);/)[1];
        var bytes = atob(parts[1]);
        var arr = new Uint8Array(bytes.length);
        for (var i = 0; i < bytes.length; i++) {
            arr[i] = bytes.charCodeAt(i);
        }
        return new File([arr], name, {type: mime});
    }

    function fileInputOf(elemId) {
        var el = byId(elemId);
        return el ? el.querySelector("input[type=file]") : null;
    }

    function putFile(elemId, file) {
        var input = fileInputOf(elemId);
        if (!input) {
            return false;
        }
        var dt = new DataTransfer();
        dt.items.add(file);
        input.files = dt.files;
        input.dispatchEvent(new Event("change", {bubbles: true}));
        return true;
    }

    window.segfillSendToInpaint = function (text) {
        var data;
        try {
            data = typeof text === "string" ? JSON.parse(text) : text;
        } catch (e) {
            return;
        }
        if (!data || !data.image || !data.mask) {
            return;
        }
        if (typeof switch_to_img2img_tab === "function") {
            switch_to_img2img_tab(4); // img2img -> Inpaint upload
        }
        var image = dataUrlToFile(data.image, "segfill-image.png");
        var mask = dataUrlToFile(data.mask, "segfill-mask.png");
        setTimeout(function () {
            // gradio 3.41 and 4 keep an image box's file input while it shows an image; older ones did not.
            if (!fileInputOf("img_inpaint_base") || !fileInputOf("img_inpaint_mask")) {
                setStatus("Clear the two images in img2img → Inpaint upload, then send again.", true);
                return;
            }
            putFile("img_inpaint_base", image);
            putFile("img_inpaint_mask", mask);
        }, 200);
    };

    // ---- the canvas' API for other scripts (documented in docs/ARCHITECTURE.md) -------------------------
    window.segfillCanvas = {
        version: 1,
        // fn(info) -> mask-like | null | Promise of one; info = {kind: "hover"|"click", x, y, label, points,
        // box, width, height, imageRev, model}. Hover: called while the pointer rests on the image (throttled).
        // Click: called with the prompt including the new point; its mask is drawn until the server's arrives.
        setPreviewProvider: function (fn) {
            S.provider = typeof fn === "function" ? fn : null;
            S.hoverMask = null;
            draw();
        },
        // Draw a mask the server did not send (grey or {data, width, height}; options.alpha: use alpha), until
        // a payload newer than options.rev (default: the current one) arrives. null clears it.
        showMask: showMask,
        clearPreview: function () {
            S.hoverMask = null;
            S.provisional = null;
            draw();
        },
        // busy(key, {text, progress: 0..1 | null}) shows a busy note on the canvas; busy(key, null) ends it.
        busy: setBusy,
        // on(name, fn): "event" (every event sent to Python), "point", "box", "image", "mode", "payload",
        // "preview" ({kind: "hover" | "click", at: performance.now()} once a preview mask is drawn).
        on: function (name, fn) {
            (S.listeners[name] = S.listeners[name] || []).push(fn);
            return function () {
                S.listeners[name] = (S.listeners[name] || []).filter(function (f) {
                    return f !== fn;
                });
            };
        },
        send: send,
        info: function () {
            return promptInfo({mode: S.mode, rev: S.rev, provisional: !!S.provisional, busy: Object.keys(S.busyMap)});
        },
        setMode: setMode,
        // the panel's tabs: the Outpaint tab shows the frame, the others the last editing tool
        panelMode: function (mode) {
            ensureInit();
            if (!S.root) {
                return;
            }
            if (mode === "frame") {
                if (S.mode !== "frame") {
                    S.modeBeforeFrame = S.mode;
                    setMode("frame", true);
                }
            } else if (S.mode === "frame") {
                setMode(S.modeBeforeFrame || "select");
            }
        },
        imageToClient: function (x, y) {
            var rect = S.canvas.getBoundingClientRect();
            return {x: rect.left + S.ox + x * S.scale, y: rect.top + S.oy + y * S.scale};
        }
    };

    window.segfillDebugState = function () {
        return {mode: S.mode, view: S.view, scale: S.scale, ox: S.ox, oy: S.oy, width: S.width, height: S.height,
            rev: S.rev, queue: S.queue.length, inFlight: S.inFlight, compare: S.compare, split: S.split,
            frame: S.frame.slice(), detail: S.detail ? {rect: S.detail.rect, size: S.detail.size,
                image: !!S.detail.image, mask: !!S.detail.mask} : null,
            result: S.result ? S.result.id : null, resultLoaded: !!S.resultImg, busy: Object.keys(S.busyMap),
            brushSize: S.brushSize, hardness: S.hardness, maskColor: S.maskColor, maskOpacity: S.maskOpacity,
            provisional: !!S.provisional, hoverMask: !!S.hoverMask, localImage: !!S.localImage,
            chips: S.chipRects.slice(), textFocus: S.textFocus}; // chips: drawn boxes' labels, canvas css px, in drawing order
    };
    // Test hook: the last payload without its (large) image data.
    window.segfillLastPayload = function () {
        var p = S.payload || {};
        var copy = {};
        Object.keys(p).forEach(function (k) {
            if (["image", "mask", "segment_map", "download", "candidates", "detail", "result", "results"].indexOf(k) < 0) {
                copy[k] = p[k];
            }
        });
        copy.candidates = (p.candidates || []).map(function (c) {
            return {index: c.index, score: c.score};
        });
        if (p.result) {
            copy.result = {};
            Object.keys(p.result).forEach(function (k) {
                if (k !== "url") {
                    copy.result[k] = p.result[k];
                }
            });
        } else {
            copy.result = null;
        }
        copy.detail = p.detail ? {rect: p.detail.rect, size: p.detail.size} : null;
        return copy;
    };
    // Test hook: image point -> client (page) coordinates under the current zoom.
    window.segfillImageToClient = window.segfillCanvas.imageToClient;
})();
