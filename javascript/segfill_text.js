// SegFill "Select by text": the options beside the canvas' text box (box and text thresholds, which detector)
// and what this installation's detectors can do (payload.detectors.message: what to install for the others).
//
// Plugs into the canvas (javascript/segfill.js) through window.segfillCanvas: it reads each drawn payload
// ("payload" listener) and adds a small ▾ button after the "Select by text…" field that opens a popover on the
// stage. segfill.js asks window.SegFillText.options() for the thresholds and detector of each `detect` event;
// empty fields are left out (the detector's defaults). Boxes, chips and the candidate strip are drawn by
// segfill.js.
(function () {
    "use strict";
    if (window.SegFillText) {
        return;
    }
    var T = {root: null, payload: null};

    function q(name) {
        return T.root ? T.root.querySelector('[data-role="' + name + '"]') : null;
    }

    function el(tag, attrs, text) {
        var node = document.createElement(tag);
        Object.keys(attrs || {}).forEach(function (k) {
            node.setAttribute(k, attrs[k]);
        });
        if (text) {
            node.textContent = text;
        }
        return node;
    }

    function numberField(role, title) {
        return el("input", {type: "number", min: "0", max: "1", step: "0.05", placeholder: "auto",
            "data-role": role, title: title, inputmode: "decimal"});
    }

    function build(root) {
        var box = root.querySelector('[data-role="detect"]');
        var stage = root.querySelector('[data-role="stage"]');
        if (!box || !stage || box.querySelector('[data-role="detect-options-button"]')) {
            return;
        }
        var button = el("button", {type: "button", "data-role": "detect-options-button", class: "segfill-detect-more",
            title: "Select by text: thresholds, detector, what is installed", "aria-label": "Select by text options",
            "aria-expanded": "false"}, "▾");
        var input = box.querySelector('[data-role="detect-text"]');
        box.insertBefore(button, input ? input.nextSibling : box.firstChild);

        var pop = el("div", {class: "segfill-popover segfill-detect-options", "data-role": "detect-options",
            role: "dialog", "aria-label": "Select by text options"});
        pop.hidden = true;
        pop.appendChild(el("p", {class: "segfill-detect-message", "data-role": "detect-message"}));
        var detector = el("label", {}, "Detector ");
        detector.appendChild(el("select", {"data-role": "detect-detector"}));
        pop.appendChild(detector);
        var boxRow = el("label", {}, "Box threshold ");
        boxRow.appendChild(numberField("detect-box-threshold", "A box is kept when the detector's score is at least this (0–1); empty: the detector's default"));
        boxRow.appendChild(el("small", {"data-role": "detect-box-default"}));
        pop.appendChild(boxRow);
        var textRow = el("label", {"data-role": "detect-text-row"}, "Text threshold ");
        textRow.appendChild(numberField("detect-text-threshold", "GroundingDINO: how strongly a box must match the words of its label (0–1); empty: the default"));
        textRow.appendChild(el("small", {"data-role": "detect-text-default"}));
        pop.appendChild(textRow);
        pop.appendChild(el("p", {class: "segfill-detect-last", "data-role": "detect-last"}));
        pop.appendChild(el("p", {class: "segfill-detect-tip"},
            "On the canvas: ✓ on a box's label drops or keeps it; its name shows SAM's candidates for it below."));
        stage.appendChild(pop);

        button.addEventListener("click", function (e) {
            e.stopPropagation();
            toggle(pop.hidden);
        });
        pop.addEventListener("keydown", function (e) {
            if (e.key === "Escape") {
                e.stopPropagation();
                toggle(false);
                if (input && !input.disabled) {
                    input.focus();
                }
            } else if (e.key === "Enter" && e.target.tagName === "INPUT") {
                e.preventDefault();
                var find = box.querySelector("[data-action='detect']");
                if (find && !find.disabled) {
                    find.click();
                }
            }
        });
        document.addEventListener("pointerdown", function (e) {
            if (!pop.hidden && !pop.contains(e.target) && e.target !== button) {
                toggle(false);
            }
        }, true);
    }

    function toggle(open) {
        var pop = q("detect-options"), button = q("detect-options-button");
        if (!pop) {
            return;
        }
        pop.hidden = !open;
        button.setAttribute("aria-expanded", open ? "true" : "false");
        if (open) {
            place(pop);
        }
    }

    // under the text box, inside the stage
    function place(pop) {
        var stage = T.root.querySelector('[data-role="stage"]'), box = q("detect");
        var s = stage.getBoundingClientRect(), b = box.getBoundingClientRect();
        var left = Math.max(8, Math.min(b.left - s.left, s.width - pop.offsetWidth - 8));
        pop.style.left = left + "px";
        pop.style.right = "auto";
    }

    function byId(id) {
        var app = null;
        try {
            app = typeof gradioApp === "function" ? gradioApp() : null;
        } catch (e) { /* not the WebUI */ }
        var gradio = document.querySelector("gradio-app");
        app = app || (gradio && gradio.shadowRoot) || document;
        return app.querySelector("#" + id) || document.getElementById(id);
    }

    function findRoot() {
        return byId("segfill_canvas_root");
    }

    // gradio shows a detect's progress (a first-use download) on the block #segfill_detect_progress: lay it over
    // the canvas' bottom bar (the block is empty and lets clicks through when nothing runs)
    function placeProgress() {
        var block = byId("segfill_detect_progress");
        var bar = T.root && T.root.querySelector(".segfill-bottombar");
        var parent = block && block.offsetParent;
        if (!block || !bar || !parent) {
            return;
        }
        var b = bar.getBoundingClientRect(), o = parent.getBoundingClientRect();
        block.style.left = (b.left - o.left) + "px";
        block.style.top = (b.top - o.top) + "px";
        block.style.width = b.width + "px";
        block.style.height = b.height + "px";
        block.style.bottom = "auto";
        block.style.right = "auto";
    }

    function formatThreshold(v) {
        return typeof v === "number" ? v.toFixed(2) : "";
    }

    function update(p) {
        var root = findRoot();
        if (!root) {
            return;
        }
        T.root = root;
        build(root);
        placeProgress();
        var block = byId("segfill_detect_progress");
        if (block) {
            block.classList.remove("segfill-detecting");
        }
        if (!p || !p.detectors) {
            return;
        }
        T.payload = p;
        var info = p.detectors, button = q("detect-options-button"), input = q("detect-text");
        if (!button) {
            return;
        }
        q("detect-message").textContent = info.message || "";
        button.classList.toggle("segfill-detect-warn", !info.available);
        button.textContent = info.available ? "▾" : "!";
        if (input) {
            input.placeholder = info.available ? "Select by text…" : "Select by text: not here";
            input.title = info.message || "";
        }
        var titles = info.titles || {};
        var boxDefaults = Object.keys(info.box_thresholds || {}).map(function (f) {
            return (titles[f] || f) + " " + formatThreshold(info.box_thresholds[f]);
        });
        q("detect-box-default").textContent = boxDefaults.length ? "auto: " + boxDefaults.join(", ") : "";
        var textFamilies = info.text_threshold_families || [];
        var textField = q("detect-text-threshold");
        textField.disabled = !textFamilies.length;
        q("detect-text-default").textContent = textFamilies.length ? "GroundingDINO only · auto: " +
            formatThreshold(info.text_threshold) : "GroundingDINO only (not available here)";
        var select = q("detect-detector");
        var choices = info.choices || (select.options.length ? null : [{value: "", label: "Automatic"}]);
        var signature = choices && JSON.stringify(choices); // payloads without choices keep the ones shown
        if (choices && select.getAttribute("data-choices") !== signature) {
            var chosen = select.value;
            select.innerHTML = "";
            choices.forEach(function (c) {
                var option = el("option", {value: c.value}, c.label);
                select.appendChild(option);
            });
            // a hub id chosen and now downloaded is offered as its folder (<owner>--<name>): keep it chosen
            var downloaded = chosen.replace("/", "--");
            var values = choices.map(function (c) {
                return c.value;
            });
            select.value = values.indexOf(chosen) >= 0 ? chosen : (values.indexOf(downloaded) >= 0 ? downloaded : "");
            select.setAttribute("data-choices", signature);
        }
        select.disabled = !info.available;
        var last = p.text;
        q("detect-last").textContent = last ? "Last: “" + last.text + "” with " + last.detector + " (" +
            (titles[last.family] || last.family) + "), box ≥ " + formatThreshold(last.box_threshold) +
            (typeof last.text_threshold === "number" ? ", text ≥ " + formatThreshold(last.text_threshold) : "") : "";
    }

    // For each detect event: the thresholds and detector the user set (none: the detector's defaults).
    function options() {
        var out = {};
        [["box_threshold", "detect-box-threshold"], ["text_threshold", "detect-text-threshold"]].forEach(function (f) {
            var field = q(f[1]);
            if (field && !field.disabled && field.value.trim() !== "" && isFinite(Number(field.value))) {
                out[f[0]] = Number(field.value);
            }
        });
        var select = q("detect-detector");
        if (select && select.value) {
            out.detector = select.value;
        }
        return out;
    }

    function attach() {
        if (!window.segfillCanvas) {
            return false;
        }
        window.segfillCanvas.on("payload", update);
        window.segfillCanvas.on("event", function (e) {
            if (e && e.type === "detect") {
                placeProgress(); // the page may have moved since the last answer
                var block = byId("segfill_detect_progress");
                if (block) {
                    block.classList.add("segfill-detecting"); // opaque while gradio may show progress on it
                }
            }
        });
        window.addEventListener("resize", placeProgress);
        return true;
    }

    window.SegFillText = {options: options, update: update, toggle: toggle, placeProgress: placeProgress};
    if (!attach()) {
        var tries = 0, timer = setInterval(function () {
            if (attach() || ++tries > 100) {
                clearInterval(timer);
            }
        }, 100);
    }
})();
