"""/admin/models: per-model defaults and the vision flag, saved from the page (simulated user)."""

from __future__ import annotations

from nicegui import ui
from nicegui.testing import User

from tests.helpers import wait_until_async
from tests.pages.conftest import app_state, sign_in_admin


async def test_admin_marks_a_model_vision_and_sets_its_defaults(user: User, add_model) -> None:
    model = add_model("ok", model="page-vision-model")
    await sign_in_admin(user)
    await user.open("/admin/models")
    await user.should_see(model, marker="model-name")
    card = user.find(marker=f"model-{model}")
    assert card.elements
    switch = user.find(marker="vision").elements.pop()
    assert isinstance(switch, ui.switch) and switch.value is False
    switch.value = True
    user.find(marker="default-system-prompt").type("Describe images briefly.")
    user.find(marker="default-max_tokens").elements.pop().value = 512
    user.find(marker="model-save").click()
    await user.should_see(f"{model} 的设置已保存并立即生效")
    store = app_state().model_settings
    await wait_until_async(lambda: store.get(model).vision, what="the vision flag in the cache")
    saved = store.get(model)
    assert (saved.system_prompt, saved.max_tokens, saved.temperature) == (
        "Describe images briefly.",
        512,
        None,
    )


async def test_a_default_out_of_range_is_named_and_not_saved(user: User, add_model) -> None:
    model = add_model("ok", model="page-range-model")
    await sign_in_admin(user)
    await user.open("/admin/models")
    user.find(marker="default-temperature").elements.pop().value = 5
    user.find(marker="model-save").click()
    await user.should_see("默认温度（0–2） 须在 0.0 到 2.0 之间", marker="model-error")
    assert app_state().model_settings.get(model).temperature is None
