import json

import PIL.Image
import pytest

from reasondiff.thinkdiff import cobsat
from reasondiff.thinkdiff.cobsat import ITEMS, TASKS, build_prompts, evaluate, format_table, load_permutations

PERMUTATIONS = [
    {"x_list": [2, 0, 5, 1, 3], "theta_list": [0, 0, 0, 4, 7, 9]},
    {"x_list": [9, 8, 7, 6, 5], "theta_list": [1, 1, 1, 2, 3, 3]},
    {"x_list": [0, 1, 2, 3, 4], "theta_list": [5, 5, 5, 6, 8, 0]},
    {"x_list": [3, 3, 4, 4, 9], "theta_list": [9, 9, 9, 9, 1, 2]},
]


def encode(detail_idx, obj_idx):
    return (20 * detail_idx + 10, 20 * obj_idx + 10, 128)


def decode(image):
    r, g, _ = image.convert("RGB").getpixel((4, 4))
    return round((r - 10) / 20), round((g - 10) / 20)


@pytest.fixture
def cobsat_root(tmp_path):
    """A fake CoBSAT clone: datasets/{detail}_{object}/{value}_{object}.jpg for tasks 1-4, plus the permutation file.

    Each picture is one flat colour that encodes (detail index, object index), so the scripted judge can
    "see" what a picture shows."""
    for detail, obj in [("color", "object"), ("background", "animal")]:
        for o, obj_value in enumerate(ITEMS[obj]):
            folder = tmp_path / "datasets" / f"{detail}_{obj_value}"
            folder.mkdir(parents=True)
            for d, detail_value in enumerate(ITEMS[detail]):
                PIL.Image.new("RGB", (8, 8), encode(d, o)).save(folder / f"{detail_value}_{obj_value}.jpg")
    (tmp_path / "load_datasets").mkdir()
    (tmp_path / "load_datasets" / "prompts_list_default.json").write_text(json.dumps(PERMUTATIONS))
    return tmp_path


class ScriptedJudge:
    """Reads the picture's code and answers CoBSAT's two questions with option numbers, as a VLM would."""

    def __init__(self):
        self.questions = []

    def answer(self, images, question):
        self.questions.append(question)
        detail, obj = decode(images[0])
        is_object_question = question.startswith("What is the main")
        return f"({(obj if is_object_question else detail) + 1})" if is_object_question else f"{detail + 1}"


def test_prompts_follow_the_permutation_file(cobsat_root):
    perms = load_permutations(cobsat.default_permutations(cobsat_root))
    two = build_prompts(cobsat_root, 1, 2, perms)  # Color-I: texts name colours, the object is latent
    p = two[0]
    assert p.texts == ["red: ", "yellow: ", "orange: "] and p.theta == "car"  # theta = objects[theta_list[shot+1]=4]
    assert [x.relative_to(cobsat_root).as_posix() for x in p.image_paths] == [
        "datasets/color_car/red_car.jpg", "datasets/color_car/yellow_car.jpg"]
    assert (p.target_object, p.target_detail) == ("car", "orange")
    four = build_prompts(cobsat_root, 1, 4, perms)[0]
    assert four.texts == ["red: ", "yellow: ", "orange: ", "white: ", "purple: "] and four.theta == "apple"
    assert len(four.image_paths) == 4 and four.image_paths[3].name == "white_apple.jpg"
    ii = build_prompts(cobsat_root, 2, 2, perms)[0]  # Color-II: texts name objects, the colour is latent
    assert ii.texts == ["cup: ", "leaf: ", "box: "] and ii.theta == "pink"
    assert ii.image_paths[0].relative_to(cobsat_root).as_posix() == "datasets/color_cup/pink_cup.jpg"
    assert (ii.target_object, ii.target_detail) == ("box", "pink")
    bg = build_prompts(cobsat_root, 4, 2, perms)[1]  # Background-II: animals named, background latent
    assert bg.texts == ["bird: ", "cat: ", "cow: "] and bg.theta == "glacier"  # backgrounds[theta_list[3]=2]
    assert bg.image_paths[0].name == "glacier_bird.jpg"
    assert [p.name for p in two][:2] == ["0_car_red_yellow_orange", "1_cup_black_blue_brown"]


def test_interleaved_input_ends_with_the_query_and_the_instruction(cobsat_root):
    from reasondiff.thinkdiff import COBSAT_INSTRUCTION

    prompt = build_prompts(cobsat_root, 1, 2, PERMUTATIONS)[0]
    items = prompt.items(COBSAT_INSTRUCTION)
    kinds = ["img" if isinstance(x, PIL.Image.Image) else x for x in items]
    assert kinds == ["red: ", "img", "yellow: ", "img", "orange: ", COBSAT_INSTRUCTION]
    assert decode(items[1]) == (ITEMS["color"].index("red"), ITEMS["object"].index("car"))
    assert COBSAT_INSTRUCTION.startswith("I give you several words and pictures.")


def test_accuracy_equals_the_hand_computed_value(cobsat_root, tmp_path):
    # The "model" answers prompt 0 right, prompt 1 with the wrong detail, prompt 2 right, prompt 3 with the
    # wrong object. Only both-right counts: accuracy 2/4 on every task.
    def generate(prompt):
        d = ITEMS[prompt.task.detail].index(prompt.target_detail)
        o = ITEMS[prompt.task.object].index(prompt.target_object)
        if prompt.index == 1:
            d = (d + 1) % 10
        if prompt.index == 3:
            o = (o + 3) % 10
        return PIL.Image.new("RGB", (8, 8), encode(d, o))

    judge = ScriptedJudge()
    results = evaluate(cobsat_root, PERMUTATIONS, generate, judge, shot=2, task_ids=[1, 2, 3, 4],
                       out_dir=tmp_path / "out", progress=False)
    assert {t: r.accuracy for t, r in results.items()} == {1: 0.5, 2: 0.5, 3: 0.5, 4: 0.5}
    j = results[1].judgements
    assert [(x.object_correct, x.detail_correct) for x in j] == [(True, True), (True, False), (True, True),
                                                                 (False, True)]
    assert len(judge.questions) == 2 * 4 * 4 and all(q.endswith("Answer the number only.") for q in judge.questions)
    assert "(1)zebra (2)tiger" in judge.questions[-2] and "(5)amusement park" in judge.questions[-1]
    assert len((tmp_path / "out" / "shot_2" / "results.jsonl").read_text().splitlines()) == 16
    assert (tmp_path / "out" / "shot_2" / "Color-I" / "0_car_red_yellow_orange.png").is_file()
    table = format_table(results, "toy")
    header, row = table.splitlines()
    assert header.split() == ["Color-I", "Background-I", "Color-II", "Background-II", "Mean"]
    assert row.split() == ["toy", "0.500", "0.500", "0.500", "0.500", "0.500"]


def test_the_full_table_has_the_papers_ten_columns():
    results = {t: cobsat.TaskResult(TASKS[t], 2) for t in TASKS}
    for t, r in results.items():
        r.judgements = [cobsat.Judgement("x", "1", "1", True, t % 2 == 1)]
    header, row = format_table(results).splitlines()
    assert header.split() == ["Color-I", "Background-I", "Style-I", "Action-I", "Texture-I", "Color-II",
                              "Background-II", "Style-II", "Action-II", "Texture-II", "Mean"]
    assert row.split()[1:] == ["1.000"] * 5 + ["0.000"] * 5 + ["0.500"]


def test_answers_are_parsed_as_whole_numbers():
    assert cobsat.parse_choice("10") == 10 and cobsat.parse_choice("The answer is (3) red") == 3
    assert cobsat.parse_choice("red") is None


def test_missing_images_and_bad_permutation_files_are_reported(cobsat_root):
    with pytest.raises(FileNotFoundError, match="missing"):
        build_prompts(cobsat_root, 5, 2, PERMUTATIONS)  # no style_* folders in the fake dataset
    bad = cobsat_root / "bad.json"
    bad.write_text(json.dumps([{"x_list": [1]}]))
    with pytest.raises(ValueError, match="permutation"):
        load_permutations(bad)


def test_openai_judge_sends_the_image_and_the_question():
    sent = {}

    class Completions:
        def create(self, **kwargs):
            sent.update(kwargs)
            message = type("M", (), {"content": "4"})()
            return type("R", (), {"choices": [type("C", (), {"message": message})()]})()

    client = type("Client", (), {"chat": type("Chat", (), {"completions": Completions()})()})()
    judge = cobsat.OpenAIJudge("qwen2-vl", client=client)
    assert judge.answer([PIL.Image.new("RGB", (4, 4))], "What is it? Answer the number only.") == "4"
    content = sent["messages"][0]["content"]
    assert content[0]["image_url"]["url"].startswith("data:image/png;base64,")
    assert content[1] == {"type": "text", "text": "What is it? Answer the number only."} and sent["temperature"] == 0


def test_the_current_permutation_file_is_found_and_the_old_name_still_works(tmp_path):
    folder = tmp_path / "load_datasets"
    folder.mkdir()
    assert cobsat.default_permutations(tmp_path) == folder / "prompts_list_default.json"  # named even if absent
    with pytest.raises(FileNotFoundError, match="prompts_list_default.json"):
        load_permutations(cobsat.default_permutations(tmp_path))
    (folder / "prompts_list.json").write_text(json.dumps(PERMUTATIONS))  # a clone from before CoBSAT's rename
    assert cobsat.default_permutations(tmp_path).name == "prompts_list.json"
    (folder / "prompts_list_default.json").write_text(json.dumps(PERMUTATIONS[:1]))
    assert len(load_permutations(cobsat.default_permutations(tmp_path))) == 1  # the current file wins


def test_item2word_rewrites_the_texts_of_background_i_and_style_i_not_the_files():
    # x_list[0] = 4 is "park" among backgrounds, 8 is "3d" among styles (CoBSAT configs.item_dict)
    perms = [{"x_list": [4, 8, 0, 1, 2], "theta_list": [0, 0, 0, 0, 0, 0]}]
    bg = build_prompts("root", 3, 2, perms, check_images=False)[0]  # Background-I: texts name backgrounds
    assert bg.texts == ["amusement park: ", "cave: ", "beach: "] and bg.x_values == ["park", "cave", "beach"]
    assert bg.image_paths[0].as_posix().endswith("background_zebra/park_zebra.jpg")  # files keep the item
    assert bg.name == "0_zebra_amusement park_cave_beach"  # CoBSAT's save_path joins the words
    style = build_prompts("root", 5, 2, perms, check_images=False)[0]  # Style-I
    assert style.texts == ["lego: ", "wireframe: ", "watercolor: "]
    assert style.image_paths[1].name == "3d_leaf.jpg"
    plain = build_prompts("root", 1, 2, perms, check_images=False)[0]  # Color-I: nothing to rewrite
    assert plain.texts == ["pink: ", "blue: ", "yellow: "]
    # the share of rewritten prompts over CoBSAT-like permutations is what the issue measured (26-91 %)
    rng = __import__("random").Random(0)
    many = [{"x_list": rng.sample(range(10), 10), "theta_list": rng.sample(range(10), 10)} for _ in range(200)]
    for task_id, shot, low, high in ((3, 2, 0.26, 0.34), (5, 4, 0.45, 0.55)):
        share = sum(any(w in " ".join(p.texts) for w in ("amusement park", "wireframe"))
                    for p in build_prompts("root", task_id, shot, many, check_images=False)) / len(many)
        assert low <= share <= high, share  # 3 of 10 x values in 2-shot, 5 of 10 in 4-shot


def test_a_task_table_of_another_benchmark_with_rendered_images():
    items = {"agent": ["cat", "dog", "pig"], "room": ["kitchen", "garden"]}
    table = cobsat.TaskTable.from_pairs(items, [("Room", "room", "agent")], {"garden": "green garden"})
    assert [(t.name, t.x_space, t.theta_space) for t in table.tasks.values()] == [
        ("Room-I", "room", "agent"), ("Room-II", "agent", "room")]
    drawn = []

    def render(task, x, theta, prompt, demo):
        drawn.append((task.name, x, theta, prompt, demo))
        return PIL.Image.new("RGB", (4, 4), (demo, 0, 0))

    perms = [{"x_list": [0, 1, 2, 3], "theta_list": [0, 0, 0, 5]}]
    p = build_prompts(None, 1, 2, perms, table=table, images=render)[0]  # indices wrap round the short lists
    assert p.texts == ["kitchen: ", "green garden: ", "kitchen: "] and p.theta == "pig"
    assert (p.target_object, p.target_detail) == ("pig", "kitchen")
    assert drawn == [("Room-I", "kitchen", "pig", 0, 0), ("Room-I", "garden", "pig", 0, 1)]
    assert p.image_paths == [] and p.items()[3].getpixel((0, 0)) == (1, 0, 0)
    ii = build_prompts(None, 2, 1, perms, table=table, images=render)[0]
    assert ii.texts == ["cat: ", "dog: "] and ii.theta == "kitchen" and ii.target_object == "dog"
    row = format_table({1: 0.25, 2: 0.75}, "m", table).splitlines()[1].split()
    assert row == ["m", "0.250", "0.750", "0.500"]
