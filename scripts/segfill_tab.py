"""WebUI glue: the SegFill tab, its settings section and its REST routes. Thin on purpose: everything with
logic lives in ``segfill`` (``segfill.hosts.webui``, ``segfill.ui``, ``segfill.api``, ``segfill.settings``).
This and ``segfill_outpaint.py`` are the only files that import the WebUI's ``modules``."""

import gradio as gr
from modules import call_queue, images, paths, processing, script_callbacks, sd_models, shared

from segfill import settings as segfill_settings
from segfill.hosts.webui.bindings import WebUIBindings
from segfill.hosts.webui.host import WebUIHost, current_host, set_host_factory
from segfill.hosts.webui.send_to_img2img import IMG2IMG_COMPONENT_IDS

try:
    import modules_forge  # noqa: F401  (only Forge has it)

    HOST_NAME = "forge"
except ImportError:
    HOST_NAME = "webui"


def loaded_sd_model():
    """The loaded checkpoint without loading one (``shared.sd_model`` would load it on 1.10)."""
    model = getattr(getattr(sd_models, "model_data", None), "sd_model", None)
    if model is None and HOST_NAME == "forge":
        model = getattr(shared, "sd_model", None)
    return model


def selected_checkpoint():
    """(title, file) of the checkpoint the user selected; Forge loads it only at the next generation."""
    title = getattr(shared.opts, "sd_model_checkpoint", None)
    if not title:
        return None
    info = sd_models.get_closet_checkpoint_match(title)
    return (info.title, info.filename) if info is not None else (str(title), None)


def switch_checkpoint(title):
    # the option's onchange handler reloads the weights under the queue lock (1.10); Forge loads lazily
    shared.opts.set("sd_model_checkpoint", title)


def make_host():
    return WebUIHost(WebUIBindings(
        process_images=processing.process_images,
        img2img_class=processing.StableDiffusionProcessingImg2Img,
        state=shared.state,
        opts=shared.opts,
        get_sd_model=loaded_sd_model,
        queue_lock=call_queue.queue_lock,
        list_checkpoints=lambda: list(sd_models.checkpoints_list.keys()),
        selected_checkpoint=selected_checkpoint,
        switch_checkpoint=switch_checkpoint,
        save_image=images.save_image,
        models_path=paths.models_path,
        name=HOST_NAME,
    ))


def on_ui_settings():
    for setting in segfill_settings.SETTINGS:
        shared.opts.add_option(setting.key, shared.OptionInfo(
            setting.default, setting.label, getattr(gr, setting.component), dict(setting.component_args),
            section=segfill_settings.SECTION))


#: img2img's "Inpaint upload" image and mask, width, height and inpaint area, captured as the WebUI builds them
#: (before our tab)
CAPTURED_IDS = {elem_id: name for name, elem_id in IMG2IMG_COMPONENT_IDS.items()}
img2img_components = {}


def on_after_component(component, **kwargs):
    name = CAPTURED_IDS.get(kwargs.get("elem_id"))
    if name is not None:  # the latest build wins ("Reload UI" builds every component again)
        img2img_components[name] = component


def on_ui_tabs():
    host = current_host()
    if "image" in img2img_components and "mask" in img2img_components:
        # "Send to img2img inpaint" then fills them from Python; without them the tab falls back to JS
        host.inpaint_upload_components = [img2img_components["image"], img2img_components["mask"]]
        host.img2img_components = dict(img2img_components)
    try:
        from segfill.ui.builder import build_tab

        blocks = build_tab(host)
    except Exception as exc:  # e.g. a missing optional package: say so instead of losing the tab
        with gr.Blocks(analytics_enabled=False) as blocks:
            gr.Markdown(f"**SegFill could not build its tab:** {exc}")
    return [(blocks, "SegFill", "segfill")]


def on_app_started(demo, app):
    from segfill.api import register_routes

    host = current_host()
    register_routes(app, host, queue_lock=host.lock)


set_host_factory(make_host)
script_callbacks.on_ui_settings(on_ui_settings)
script_callbacks.on_after_component(on_after_component)
script_callbacks.on_ui_tabs(on_ui_tabs)
script_callbacks.on_app_started(on_app_started)
