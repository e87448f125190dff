import numpy as np
import pytest
from PIL import Image

from reasondiff import VisionNarrator
from reasondiff.mini import AGENTS, OBJECTS, ROOMS, EventScript, sample_script
from reasondiff.mini.narrator import canonical_script, narrate_world, rewrite_world
from reasondiff.mini.palette import parse_frame


def test_parser_reads_back_the_ground_truth_of_rendered_frames():
    rng = np.random.default_rng(0)
    checked = 0
    for _ in range(40):
        script = sample_script(rng)
        for t in range(script.num_frames):
            state, seen = script.state(t), parse_frame(script.render(t))
            assert seen.room == script.room and seen.object == script.object
            assert seen.object_state == state.object_state
            if seen.agent is not None:
                assert seen.agent == script.agent
                assert abs(seen.agent_x - max(state.agent_x, 0.0)) < 0.08
            checked += 1
    assert checked == 40 * 17


def unpaired_cases():
    for i, (agent, obj, room) in enumerate((a, o, r) for a in AGENTS for o in OBJECTS for r in ROOMS):
        yield canonical_script(agent, obj, room, 17), i


@pytest.mark.parametrize("position", [1, 17])
def test_world_narrator_places_first_and_last_frames(position):
    for script, i in unpaired_cases():
        image = Image.fromarray(script.render(position - 1))
        other_agent = list(AGENTS)[(list(AGENTS).index(script.agent) + i) % len(AGENTS)]
        narration = narrate_world(image, f"a {other_agent} plays in the {script.room}", 17)
        assert narration.position == position, (script, position)
        assert narration.num_frames == 17
        texts = " ".join(narration.descriptions)
        assert other_agent in texts  # the prompt's agent acts, whoever the image came from
        # cause before effect: the changed state appears only after the contact frame
        changed = OBJECTS[script.object][1]
        first_changed = next(k for k, d in enumerate(narration.descriptions) if changed in d)
        contact = next(k for k, d in enumerate(narration.descriptions) if d.startswith(f"the {other_agent} ")
                       and changed not in d)
        assert contact < first_changed


def test_world_narrator_places_an_approaching_agent_before_the_contact():
    script = canonical_script("dog", "vase", "garden", 17)
    for t in range(script.enter + 1, script.contact):
        narration = narrate_world(Image.fromarray(script.render(t)), "a dog runs in the garden", 17)
        assert abs(narration.position - (t + 1)) <= 1
        assert narration.position <= script.contact


def test_it_is_a_narrator_backend():
    script = canonical_script("pig", "tower", "kitchen", 9)
    narrator = VisionNarrator("synthworld:", use_cache=False)
    narration = narrator.narrate(Image.fromarray(script.render(8)), "a pig trots in the kitchen", 9)
    assert narration.position == 9 and narration.descriptions == script.captions()
    assert "pig" in narrator.rewrite(Image.fromarray(script.render(0)), "a pig trots")
    captions = narrator.caption([Image.fromarray(script.render(t)) for t in (0, 8)])
    assert "standing tower" in captions[0] and "fallen tower" in captions[1]


def test_images_of_another_world_are_refused():
    with pytest.raises(ValueError, match="no SynthWorld object"):
        narrate_world(Image.new("RGB", (64, 64), (5, 5, 5)), "a cat plays", 17)
    assert rewrite_world(Image.new("RGB", (64, 64), (5, 5, 5)), "a cat plays") == "a cat plays"


def test_rewrite_tells_the_story_from_the_image_on():
    script = EventScript("cat", "glass", "living room")
    assert "toward the full glass" in rewrite_world(Image.fromarray(script.render(0)), "a cat plays")
    assert "spilled glass" in rewrite_world(Image.fromarray(script.render(16)), "a cat plays")


def test_the_bundled_example_is_narrated_as_shipped():
    """Pictures of the world's own size are read as they always were: the shipped script is the narrator's."""
    from reasondiff.example import bundled_example
    from reasondiff.media import load_image

    example = bundled_example()
    narration = narrate_world(load_image(example.image_path), example.prompt, 17)
    assert (narration.position, narration.descriptions) == (example.narration.position, example.narration.descriptions)


def test_a_large_picture_is_narrated_fast_and_like_its_downscaled_copy(tmp_path):
    """An 8000x8000 picture took 326 s: the palette parser and the candidates worked at its full size."""
    import time

    from reasondiff.example import bundled_example
    from reasondiff.media import load_image

    example = bundled_example()
    big = load_image(example.image_path).resize((4000, 4000), Image.NEAREST)
    narrator = VisionNarrator("synthworld:", cache_dir=tmp_path)  # the whole path: request check, cache key, rules
    start = time.perf_counter()
    narration = narrator.narrate(big, example.prompt, 17)
    assert time.perf_counter() - start < 15  # about 1 s on 2 cores; minutes before
    copy = big.resize((200, 200), Image.BOX)
    assert narration.descriptions == narrate_world(copy, example.prompt, 17).descriptions == example.narration.descriptions
    assert narration.position == example.narration.position == 17
    # a picture rendered large, not only an upscaled one; and the other roles read it the same way
    script = canonical_script("dog", "window", "garden", 17)
    for t in (0, 8, 16):
        large = Image.fromarray(script.render(t, 3000))
        assert narrate_world(large, "a dog plays in the garden", 17).position == t + 1
        assert narrator.caption([large]) == narrator.caption([Image.fromarray(script.render(t))])
