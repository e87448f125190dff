import pytest

from reasondiff.frames import check_num_frames, latent_to_pixel_positions, num_latent_frames, pixel_to_latent_index


def test_mapping_table_for_81_frames():
    # Written out independently of the formula: position 1 alone, then blocks of four positions.
    expected = [0] + [k for k in range(1, 21) for _ in range(4)]
    assert len(expected) == 81
    assert [pixel_to_latent_index(j, 81) for j in range(1, 82)] == expected
    assert pixel_to_latent_index(1, 81) == 0
    assert {pixel_to_latent_index(j, 81) for j in (2, 3, 4, 5)} == {1}
    assert pixel_to_latent_index(6, 81) == 2
    assert pixel_to_latent_index(81, 81) == 20


@pytest.mark.parametrize("num_frames", [1, 5, 17, 33, 81])
def test_latent_frames_partition_the_pixel_positions(num_frames):
    n = num_latent_frames(num_frames)
    covered = [p for k in range(n) for p in latent_to_pixel_positions(k, num_frames)]
    assert covered == list(range(1, num_frames + 1))
    for k in range(n):
        assert all(pixel_to_latent_index(p, num_frames) == k for p in latent_to_pixel_positions(k, num_frames))


def test_num_latent_frames():
    assert [num_latent_frames(n) for n in (1, 5, 17, 33, 81)] == [1, 2, 5, 9, 21]


@pytest.mark.parametrize("bad", [0, -3, 2, 16, 80, 82])
def test_bad_frame_counts_are_rejected_with_the_rule(bad):
    with pytest.raises(ValueError, match=r"4k\+1"):
        check_num_frames(bad)
    with pytest.raises(ValueError, match=r"4k\+1"):
        pixel_to_latent_index(1, bad)


def test_bad_frame_count_error_suggests_neighbours():
    with pytest.raises(ValueError, match="77 and 81"):
        check_num_frames(80)


@pytest.mark.parametrize("position", [0, -1, 82])
def test_out_of_range_positions(position):
    with pytest.raises(ValueError, match=r"1\.\.81"):
        pixel_to_latent_index(position, 81)


def test_out_of_range_latent_index():
    with pytest.raises(ValueError, match=r"0\.\.20"):
        latent_to_pixel_positions(21, 81)


def test_non_integer_inputs():
    with pytest.raises(TypeError):
        pixel_to_latent_index(2.0, 81)
    with pytest.raises(TypeError):
        check_num_frames(17.0)
