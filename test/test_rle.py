import numpy as np
import pytest

from sam2_ros.core.rle import decode_rle, encode_rle


def test_hand_computed_column_major_runs():
    mask = np.array(
        [
            [0, 1, 1],
            [0, 1, 0],
        ],
        dtype=bool,
    )
    # column-major order: 0 0 | 1 1 | 1 0  ->  runs 2 zeros, 3 ones, 1 zero
    rle = encode_rle(mask)
    assert (rle.height, rle.width) == (2, 3)
    assert rle.counts.tolist() == [2, 3, 1]
    assert rle.area == 3
    assert rle.to_coco() == {'size': [2, 3], 'counts': [2, 3, 1]}


def test_mask_starting_with_foreground_has_leading_zero_run():
    mask = np.ones((2, 2), dtype=bool)
    assert encode_rle(mask).counts.tolist() == [0, 4]


def test_empty_and_all_background_masks():
    assert encode_rle(np.zeros((3, 4), dtype=bool)).counts.tolist() == [12]
    empty = encode_rle(np.zeros((0, 5), dtype=bool))
    assert empty.counts.tolist() == []
    assert decode_rle(0, 5, []).shape == (0, 5)


@pytest.mark.parametrize('seed', range(5))
def test_random_masks_round_trip(seed):
    rng = np.random.default_rng(seed)
    height, width = rng.integers(1, 60, size=2)
    mask = rng.random((height, width)) < rng.random()
    rle = encode_rle(mask)
    assert rle.counts.dtype == np.uint32
    assert int(rle.counts.sum()) == height * width
    np.testing.assert_array_equal(decode_rle(rle.height, rle.width, rle.counts), mask)


def test_integer_masks_are_accepted_and_validated():
    assert encode_rle(np.array([[0, 1]], dtype=np.uint8)).counts.tolist() == [1, 1]
    with pytest.raises(ValueError, match='0 or 1'):
        encode_rle(np.array([[0, 2]], dtype=np.uint8))
    with pytest.raises(ValueError, match='2-D'):
        encode_rle(np.zeros((2, 2, 1), dtype=bool))
    with pytest.raises(ValueError, match='dtype'):
        encode_rle(np.zeros((2, 2), dtype=np.float32))


def test_decode_rejects_counts_that_do_not_cover_the_mask():
    with pytest.raises(ValueError, match='sum to 5 pixels but the mask is 2x3'):
        decode_rle(2, 3, [2, 3])
    with pytest.raises(ValueError, match='non-negative'):
        decode_rle(1, 2, [3, -1])


def test_decode_refuses_a_huge_claimed_size_before_allocating():
    side = 1 << 20  # 2^40 pixels: decoding would need a terabyte
    counts = [side * side // 4] * 4  # they even cover it
    with pytest.raises(ValueError, match=f'mask claims {side}x{side} = {side * side} pixels'):
        decode_rle(side, side, counts)
    with pytest.raises(ValueError, match='more than the maximum of 6'):
        decode_rle(2, 4, [8], max_pixels=6)
    assert decode_rle(2, 3, [6], max_pixels=6).shape == (2, 3)
