from segfill.sam import advice
from segfill.sam.registry import KNOWN_MODELS


def test_mobile_sam_is_recommended_on_a_cpu_only():
    assert advice.recommended_model("cpu") == "mobile_sam" and KNOWN_MODELS["mobile_sam"].arch == "vit_t"
    assert advice.recommended_model("cuda") is None and advice.recommended_model("cuda:1") is None
    assert advice.model_advice("cuda") is None


def test_advice_says_what_to_download_until_mobile_sam_is_installed():
    text = advice.model_advice("cpu", installed_families=["sam"])
    assert "CPU" in text and "MobileSAM" in text and "'mobile_sam'" in text and "Download a SAM model" in text
    installed = advice.model_advice("cpu", installed_families=["sam", "mobile_sam"])
    assert "choose MobileSAM" in installed and "download" not in installed.lower()


def test_download_list_puts_the_recommendation_first_and_marks_it():
    choices = advice.download_choices("cpu")
    assert choices[0] == (KNOWN_MODELS["mobile_sam"].title + advice.RECOMMENDED_SUFFIX, "mobile_sam")
    assert sorted(name for _, name in choices) == sorted(KNOWN_MODELS)
    assert not any(advice.RECOMMENDED_SUFFIX in label for label, _ in advice.download_choices("cuda"))


def test_the_model_panel_recommends_mobile_sam_on_a_cpu_and_lists_it_first(tmp_path):
    from segfill.backends import create_backend
    from segfill.hosts.standalone import StandaloneHost
    from segfill.sam.manager import SamManager
    from segfill.ui.builder import _known_model_choices, model_advice_html
    from tests.tiny_models import save_tiny_sam

    save_tiny_sam(tmp_path / "tiny.pth")
    host = StandaloneHost(SamManager([tmp_path], device="cpu"), create_backend("opencv"))
    import html as html_lib

    html = html_lib.unescape(model_advice_html(host))
    assert "SAM runs on the CPU here" in html and "'mobile_sam' under 'Download a SAM model'" in html
    assert _known_model_choices("cpu")[0] == "mobile_sam"  # the download list's first and default entry
    assert _known_model_choices("cuda") == sorted(KNOWN_MODELS)  # no recommendation on a GPU: by name

    class GpuSam:
        device = "cuda"

        def list_models(self):
            return []

    host.sam = GpuSam()
    assert model_advice_html(host) == ""  # on a GPU every model is quick: no advice
