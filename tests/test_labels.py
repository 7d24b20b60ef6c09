import pytest

from fastscnn_tf import labels


def test_format_parse_round_trip(tmp_path):
    path = tmp_path / "labels.txt"
    labels.write_labels(path, labels.CITYSCAPES)
    back = labels.read_labels(path)
    assert back == labels.CITYSCAPES
    # Hand-checked line: name with a space, official colour in hex.
    assert "traffic light\t#FAAA1E" in path.read_text().splitlines()


def test_missing_colours_fall_back_to_default_palette():
    parsed = labels.parse_labels("# comment\nroad\n\ncar\t#000080\n")
    assert parsed.names == ("road", "car")
    assert parsed.colors == (labels.default_colors(2)[0], (0, 0, 128))


def test_default_colors_are_voc_like_and_distinct():
    colors = labels.default_colors(21)
    assert colors[0] == (128, 0, 0) and colors[1] == (0, 128, 0) and colors[2] == (128, 128, 0)
    assert len(set(colors)) == 21


@pytest.mark.parametrize("line", ["sky\t#12345", "sky\t#+1+1+1", "sky\t123456", "\t#000000"])
def test_malformed_lines_name_the_line(line):
    with pytest.raises(ValueError, match=r"labels.txt:2"):
        labels.parse_labels("road\t#804080\n" + line + "\n")


def test_ignore_index_may_not_be_a_class():
    with pytest.raises(ValueError, match="collides"):
        labels.LabelSet(("a", "b"), ((0, 0, 0), (1, 1, 1)), ignore_index=1)
