// SegFill canvas: click-to-mask, boxes, segment map, brush/eraser, zoom and pan.
//
// Runs unchanged in the WebUI (gradio 3.41), Forge (gradio 4) and the standalone app. It never reads
// gradio's own DOM: it talks to Python through three components of its own, found by elem_id:
//   #segfill_event_button  hidden button; its front-end function (segfillCollectEvents) hands the queued
//                          events to Python as the value of the hidden #segfill_events textbox
//   #segfill_render        hidden textbox Python answers into; a follow-up front-end function calls
//                          segfillRender(payload) with it
//   #segfill_canvas_root   our own markup inside a gr.HTML block
// Coordinates sent to Python are image pixels (x, y), origin top-left, whatever the zoom or letterboxing.
(function () {
    "use strict";
    if (window.segfillCanvasLoaded) {
        return;
    }
    window.segfillCanvasLoaded = true;

    var CLICK_SLOP = 4; // px of pointer travel that still counts as a click, not a drag
    var IN_FLIGHT_TIMEOUT_MS = 20000;
    var TINT = [30, 144, 255];
    var OUTLINE = [255, 214, 0];

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

    var S = {
        root: null,
        canvas: null,
        ctx: null,
        mode: "select",
        view: "overlay",
        brushSize: 24,
        // what Python told us
        payload: null,
        width: 0,
        height: 0,
        imageRev: -1,
        rev: -1,
        image: null, // HTMLImageElement of the display copy
        maskCanvas: null, // alpha = mask (for cut-out and mask views)
        overlayCanvas: null, // tint + outline
        segmentImage: null,
        // view transform: screen = offset + scale * image
        scale: 1,
        ox: 0,
        oy: 0,
        userZoomed: false,
        // interaction
        drag: null,
        hover: false,
        spaceDown: false,
        queue: [],
        inFlight: false,
        inFlightSince: 0,
        renderCount: 0,
        applied: 0, // payloads applied so far; images decode asynchronously, so a late decode of an older
        maskOf: 0 // payload must not replace a newer one's mask (maskOf = the payload the mask belongs to)
    };

    // ---- events to Python -------------------------------------------------------------------------------
    function send(event) {
        S.queue.push(event);
        flush();
    }

    function flush() {
        if (!S.queue.length) {
            return;
        }
        if (S.inFlight && Date.now() - S.inFlightSince < IN_FLIGHT_TIMEOUT_MS) {
            return; // sent together when the current answer has been drawn
        }
        var button = byId("segfill_event_button");
        if (button && button.tagName !== "BUTTON") {
            button = button.querySelector("button");
        }
        if (!button) {
            setStatus("SegFill: the event channel is missing; reload the page.", true);
            return;
        }
        S.inFlight = true;
        S.inFlightSince = Date.now();
        setBusy(true);
        button.click();
    }

    // Front-end function of the hidden button: replaces the textbox value with the queued events.
    window.segfillCollectEvents = function (state, events) {
        var batch = S.queue;
        S.queue = [];
        return [state, JSON.stringify(batch)];
    };

    // ---- answers from Python ----------------------------------------------------------------------------
    window.segfillRender = function (text) {
        S.inFlight = false;
        setBusy(false);
        var payload = null;
        if (text) {
            try {
                payload = typeof text === "string" ? JSON.parse(text) : text;
            } catch (e) {
                setStatus("SegFill: unreadable answer from the server.", true);
            }
        }
        if (payload) {
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
        setStatus(p.error || p.message || "", !!p.error);
        var jobs = [];
        if (p.width !== S.width || p.height !== S.height) {
            S.width = p.width || 0;
            S.height = p.height || 0;
            S.userZoomed = false;
        }
        if (!p.width) {
            S.image = null;
            S.maskCanvas = S.overlayCanvas = S.segmentImage = null;
            S.imageRev = p.image_rev;
        } else if (p.image) {
            S.imageRev = p.image_rev;
            S.segmentImage = null;
            jobs.push(loadImage(p.image).then(function (img) {
                if (S.imageRev === p.image_rev) {
                    S.image = img;
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
                        buildMaskLayers(img);
                    }
                }));
            } else {
                S.maskCanvas = S.overlayCanvas = null;
            }
        }
        if (p.segment_map) {
            jobs.push(loadImage(p.segment_map).then(function (img) {
                if (S.imageRev === p.image_rev) {
                    S.segmentImage = img;
                }
            }));
        }
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
        });
    }

    function buildMaskLayers(img) {
        var w = img.naturalWidth, h = img.naturalHeight;
        var grey = document.createElement("canvas");
        grey.width = w;
        grey.height = h;
        var gctx = grey.getContext("2d");
        gctx.drawImage(img, 0, 0);
        var src = gctx.getImageData(0, 0, w, h).data;
        var overlay = document.createElement("canvas");
        overlay.width = w;
        overlay.height = h;
        var octx = overlay.getContext("2d");
        var out = octx.createImageData(w, h);
        var alpha = document.createElement("canvas");
        alpha.width = w;
        alpha.height = h;
        var actx = alpha.getContext("2d");
        var am = actx.createImageData(w, h);
        var o = out.data, a = am.data;
        for (var y = 0; y < h; y++) {
            for (var x = 0; x < w; x++) {
                var i = (y * w + x) * 4;
                var m = src[i];
                a[i] = a[i + 1] = a[i + 2] = 255;
                a[i + 3] = m;
                var inside = m >= 128;
                var edge = inside && (x === 0 || y === 0 || x === w - 1 || y === h - 1 ||
                    src[i - 4] < 128 || src[i + 4] < 128 || src[i - w * 4] < 128 || src[i + w * 4] < 128);
                if (edge) {
                    o[i] = OUTLINE[0];
                    o[i + 1] = OUTLINE[1];
                    o[i + 2] = OUTLINE[2];
                    o[i + 3] = 255;
                } else {
                    o[i] = TINT[0];
                    o[i + 1] = TINT[1];
                    o[i + 2] = TINT[2];
                    o[i + 3] = Math.round(m * 0.45);
                }
            }
        }
        octx.putImageData(out, 0, 0);
        actx.putImageData(am, 0, 0);
        S.overlayCanvas = overlay;
        S.maskCanvas = alpha;
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

    function setStatus(text, isError) {
        if (!S.root) {
            return;
        }
        var el = S.root.querySelector('[data-role="status"]');
        if (el) {
            el.textContent = text || "";
            el.classList.toggle("segfill-error", !!isError);
        }
    }

    function setBusy(busy) {
        if (S.root) {
            S.root.classList.toggle("segfill-busy", !!busy);
        }
    }

    function renderCandidates(p) {
        var box = S.root.querySelector('[data-role="candidates"]');
        if (!box) {
            return;
        }
        var cands = p.candidates || [];
        // Python leaves the thumbnails out (candidates_same) while they are the ones already shown.
        if (!p.candidates_same) {
            box.innerHTML = "";
            cands.forEach(function (c) {
                var b = document.createElement("button");
                b.type = "button";
                b.className = "segfill-candidate";
                b.setAttribute("data-index", String(c.index));
                b.title = "Candidate " + (c.index + 1) + " (SAM score " + c.score.toFixed(3) + ")";
                var img = document.createElement("img");
                img.src = c.url;
                img.alt = "candidate " + (c.index + 1);
                var label = document.createElement("span");
                label.textContent = c.score.toFixed(2);
                b.appendChild(img);
                b.appendChild(label);
                b.addEventListener("click", function () {
                    send({type: "candidate", index: c.index});
                });
                box.appendChild(b);
            });
        }
        Array.prototype.forEach.call(box.children, function (b) {
            b.classList.toggle("active", Number(b.getAttribute("data-index")) === p.candidate);
        });
    }

    function updateButtons(p) {
        var undo = S.root.querySelector('[data-action="undo"]');
        var redo = S.root.querySelector('[data-action="redo"]');
        if (undo) {
            undo.disabled = !p.can_undo;
        }
        if (redo) {
            redo.disabled = !p.can_redo;
        }
        var empty = S.root.querySelector(".segfill-empty");
        if (empty) {
            empty.style.display = p.width ? "none" : "";
        }
    }

    // ---- view -------------------------------------------------------------------------------------------
    function cssSize() {
        var stage = S.canvas.parentElement;
        return {w: Math.max(1, stage.clientWidth), h: Math.max(1, stage.clientHeight)};
    }

    function fitView() {
        if (!S.canvas || !S.width) {
            return;
        }
        var size = cssSize();
        S.scale = Math.min(size.w / S.width, size.h / S.height);
        S.ox = (size.w - S.width * S.scale) / 2; // letterboxing
        S.oy = (size.h - S.height * S.scale) / 2;
        S.userZoomed = false;
    }

    function toImage(clientX, clientY) {
        var rect = S.canvas.getBoundingClientRect();
        return {x: (clientX - rect.left - S.ox) / S.scale, y: (clientY - rect.top - S.oy) / S.scale};
    }

    function insideImage(pt) {
        return pt.x >= 0 && pt.y >= 0 && pt.x < S.width && pt.y < S.height;
    }

    function clampToImage(pt) {
        return {x: Math.min(Math.max(pt.x, 0), S.width - 0.01), y: Math.min(Math.max(pt.y, 0), S.height - 0.01)};
    }

    function checkerboard(ctx, w, h) {
        var step = 10;
        for (var y = 0; y < h; y += step) {
            for (var x = 0; x < w; x += step) {
                ctx.fillStyle = ((x / step + y / step) % 2) ? "#bbb" : "#eee";
                ctx.fillRect(x, y, step, step);
            }
        }
    }

    function draw() {
        if (!S.canvas) {
            return;
        }
        var dpr = window.devicePixelRatio || 1;
        var size = cssSize();
        if (S.canvas.width !== Math.round(size.w * dpr) || S.canvas.height !== Math.round(size.h * dpr)) {
            S.canvas.width = Math.round(size.w * dpr);
            S.canvas.height = Math.round(size.h * dpr);
            S.canvas.style.width = size.w + "px";
            S.canvas.style.height = size.h + "px";
        }
        var ctx = S.ctx;
        ctx.setTransform(1, 0, 0, 1, 0, 0);
        ctx.clearRect(0, 0, S.canvas.width, S.canvas.height);
        if (!S.image || !S.width) {
            return;
        }
        ctx.setTransform(dpr * S.scale, 0, 0, dpr * S.scale, dpr * S.ox, dpr * S.oy);
        ctx.imageSmoothingEnabled = S.scale < 2;
        var W = S.width, H = S.height;
        if (S.view === "mask") {
            ctx.fillStyle = "#000";
            ctx.fillRect(0, 0, W, H);
            if (S.maskCanvas) {
                ctx.drawImage(S.maskCanvas, 0, 0, W, H);
            }
        } else if (S.view === "cutout") {
            ctx.save();
            ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
            ctx.beginPath();
            ctx.rect(S.ox, S.oy, W * S.scale, H * S.scale);
            ctx.clip();
            checkerboard(ctx, size.w, size.h);
            ctx.restore();
            if (S.maskCanvas) {
                var cut = document.createElement("canvas");
                cut.width = S.maskCanvas.width;
                cut.height = S.maskCanvas.height;
                var cctx = cut.getContext("2d");
                cctx.drawImage(S.image, 0, 0, cut.width, cut.height);
                cctx.globalCompositeOperation = "destination-in";
                cctx.drawImage(S.maskCanvas, 0, 0);
                ctx.drawImage(cut, 0, 0, W, H);
            }
        } else {
            ctx.drawImage(S.image, 0, 0, W, H);
            if (S.mode === "segments" && S.segmentImage) {
                ctx.globalAlpha = 0.45;
                ctx.drawImage(S.segmentImage, 0, 0, W, H);
                ctx.globalAlpha = 1;
            }
            if (S.overlayCanvas) {
                ctx.drawImage(S.overlayCanvas, 0, 0, W, H);
            }
        }
        // markers in screen pixels
        ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
        var p = S.payload || {};
        if (p.box) {
            drawBox(ctx, p.box, "#00e676");
        }
        (p.points || []).forEach(function (pt) {
            var sx = S.ox + pt[0] * S.scale, sy = S.oy + pt[1] * S.scale;
            ctx.beginPath();
            ctx.arc(sx, sy, 6, 0, Math.PI * 2);
            ctx.fillStyle = pt[2] ? "#00c853" : "#ff1744";
            ctx.fill();
            ctx.lineWidth = 2;
            ctx.strokeStyle = "#fff";
            ctx.stroke();
            ctx.beginPath();
            ctx.moveTo(sx - 3, sy);
            ctx.lineTo(sx + 3, sy);
            if (pt[2]) {
                ctx.moveTo(sx, sy - 3);
                ctx.lineTo(sx, sy + 3);
            }
            ctx.stroke();
        });
        var d = S.drag;
        if (d && d.kind === "box" && d.moved) {
            drawBox(ctx, [d.start.x, d.start.y, d.last.x, d.last.y], "#ffea00");
        }
        if (d && d.kind === "stroke" && d.points.length) {
            ctx.beginPath();
            d.points.forEach(function (pt, i) {
                var sx = S.ox + pt[0] * S.scale, sy = S.oy + pt[1] * S.scale;
                if (i) {
                    ctx.lineTo(sx, sy);
                } else {
                    ctx.moveTo(sx, sy);
                }
            });
            ctx.lineCap = ctx.lineJoin = "round";
            ctx.lineWidth = d.erase ? S.brushSize : S.brushSize;
            ctx.strokeStyle = d.erase ? "rgba(255,23,68,0.5)" : (S.mode === "segments" ? "rgba(255,234,0,0.6)" : "rgba(30,144,255,0.5)");
            if (S.mode === "segments") {
                ctx.lineWidth = 3;
            }
            ctx.stroke();
        }
    }

    function drawBox(ctx, b, color) {
        var x0 = S.ox + Math.min(b[0], b[2]) * S.scale, y0 = S.oy + Math.min(b[1], b[3]) * S.scale;
        var x1 = S.ox + Math.max(b[0], b[2]) * S.scale, y1 = S.oy + Math.max(b[1], b[3]) * S.scale;
        ctx.lineWidth = 2;
        ctx.setLineDash([6, 4]);
        ctx.strokeStyle = color;
        ctx.strokeRect(x0, y0, x1 - x0, y1 - y0);
        ctx.setLineDash([]);
    }

    // ---- pointer input ----------------------------------------------------------------------------------
    function onPointerDown(e) {
        if (!S.width) {
            return;
        }
        S.root.focus({preventScroll: true});
        var pt = toImage(e.clientX, e.clientY);
        var pan = S.mode === "pan" || e.button === 1 || S.spaceDown || (e.button === 0 && e.altKey);
        if (pan) {
            S.drag = {kind: "pan", sx: e.clientX, sy: e.clientY, ox: S.ox, oy: S.oy};
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

    function onPointerMove(e) {
        var d = S.drag;
        if (!d) {
            return;
        }
        if (d.kind === "pan") {
            S.ox = d.ox + (e.clientX - d.sx);
            S.oy = d.oy + (e.clientY - d.sy);
            S.userZoomed = true;
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

    function onPointerUp(e) {
        var d = S.drag;
        S.drag = null;
        if (!d) {
            return;
        }
        if (d.kind === "box") {
            if (d.moved) {
                send({type: "box", x0: round2(d.start.x), y0: round2(d.start.y), x1: round2(d.last.x), y1: round2(d.last.y)});
            } else {
                send({type: "point", x: round2(d.start.x), y: round2(d.start.y), label: d.button === 2 ? 0 : 1});
            }
        } else if (d.kind === "stroke") {
            var pts = d.points.map(function (p) {
                return [round2(p[0]), round2(p[1])];
            });
            if (S.mode === "segments") {
                send({type: "segment", points: pts, remove: d.remove, thickness: Math.max(1, 3 / S.scale)});
            } else {
                send({type: "stroke", points: pts, radius: round2(Math.max(0.5, S.brushSize / 2 / S.scale)), erase: d.erase});
            }
        }
        draw();
    }

    function onWheel(e) {
        if (!S.width) {
            return;
        }
        e.preventDefault();
        var rect = S.canvas.getBoundingClientRect();
        var mx = e.clientX - rect.left, my = e.clientY - rect.top;
        var factor = Math.exp(-e.deltaY * 0.0015);
        var fit = Math.min(cssSize().w / S.width, cssSize().h / S.height);
        var scale = Math.min(Math.max(S.scale * factor, fit * 0.25), 64);
        // keep the image point under the cursor fixed
        S.ox = mx - (mx - S.ox) * (scale / S.scale);
        S.oy = my - (my - S.oy) * (scale / S.scale);
        S.scale = scale;
        S.userZoomed = true;
        draw();
    }

    function isActive() {
        if (!S.root || !S.root.isConnected || S.root.offsetParent === null) {
            return false;
        }
        var focused = document.activeElement;
        var typing = focused && (focused.tagName === "TEXTAREA" || (focused.tagName === "INPUT" && focused.type !== "range"));
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
        if ((e.ctrlKey || e.metaKey) && key === "z") {
            send({type: e.shiftKey ? "redo" : "undo"});
        } else if ((e.ctrlKey || e.metaKey) && key === "y") {
            send({type: "redo"});
        } else if (key === "escape") {
            send({type: "clear"});
        } else if (key === "enter") {
            send({type: "commit"});
        } else if (key === "0") {
            fitView();
            draw();
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

    function onToolbar(e) {
        var b = e.target.closest("button[data-action]");
        if (!b || !S.root.contains(b)) {
            return;
        }
        var action = b.getAttribute("data-action");
        if (action === "mode") {
            setMode(b.getAttribute("data-mode"));
        } else if (action === "view") {
            S.view = b.getAttribute("data-view");
            markActive("view", "data-view", S.view);
            draw();
        } else if (action === "fit") {
            fitView();
            draw();
        } else if (action === "download") {
            send({type: "download", what: b.getAttribute("data-what")});
        } else {
            send({type: action});
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

    function setMode(mode) {
        S.mode = mode;
        S.root.setAttribute("data-segfill-mode", mode);
        markActive("mode", "data-mode", mode);
        if (mode === "segments" && S.width && !S.segmentImage) {
            setStatus("Computing the segment map…", false);
            send({type: "segment_map"});
        }
        draw();
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
        });
        root.addEventListener("click", onToolbar);
        var size = root.querySelector('[data-role="brush-size"]');
        if (size) {
            S.brushSize = Number(size.value);
            size.addEventListener("input", function () {
                S.brushSize = Number(size.value);
            });
        }
        if (window.ResizeObserver) {
            new ResizeObserver(function () {
                if (!S.userZoomed) {
                    fitView();
                }
                draw();
            }).observe(S.canvas.parentElement);
        }
        var upload = byId("segfill_image");
        if (upload) {
            // Python answers an upload only after SAM's encoder ran (seconds on a CPU): say so meanwhile.
            var preparing = function () {
                setStatus("Reading the image and computing SAM's embedding…", false);
            };
            upload.addEventListener("change", preparing, true);
            upload.addEventListener("drop", preparing, true);
        }
        root.setAttribute("data-segfill-ready", "1");
        if (S.payload) {
            applyPayload(S.payload);
        }
    }

    document.addEventListener("keydown", onKeyDown, true);
    document.addEventListener("keyup", onKeyUp, true);

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

    window.segfillDebugState = function () {
        return {mode: S.mode, view: S.view, scale: S.scale, ox: S.ox, oy: S.oy, width: S.width, height: S.height,
            rev: S.rev, queue: S.queue.length, inFlight: S.inFlight};
    };
    // Test hook: the last payload without its (large) image data.
    window.segfillLastPayload = function () {
        var p = S.payload || {};
        var copy = {};
        Object.keys(p).forEach(function (k) {
            if (k !== "image" && k !== "mask" && k !== "segment_map" && k !== "download" && k !== "candidates") {
                copy[k] = p[k];
            }
        });
        copy.candidates = (p.candidates || []).map(function (c) {
            return {index: c.index, score: c.score};
        });
        return copy;
    };
    // Test hook: image point -> client (page) coordinates under the current zoom.
    window.segfillImageToClient = function (x, y) {
        var rect = S.canvas.getBoundingClientRect();
        return {x: rect.left + S.ox + x * S.scale, y: rect.top + S.oy + y * S.scale};
    };
})();
