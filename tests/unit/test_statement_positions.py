"""Where each statement of a policy document is (the IAM simulator's MatchedStatements)."""

from trentd.iam.statement_positions import statement_positions


def test_a_list_of_statements_over_several_lines():
    text = '{\n  "Version": "2012-10-17",\n  "Statement": [\n    {"Sid": "a}{", "Effect": "Allow"},\n' \
           '    {"Effect": "Deny",\n     "Action": ["x:\\"]"]}\n  ]\n}'
    assert statement_positions(text) == [
        ({"Line": 4, "Column": 5}, {"Line": 4, "Column": 37}),
        ({"Line": 5, "Column": 5}, {"Line": 6, "Column": 25}),
    ]


def test_one_statement_object_and_keys_after_it():
    text = '{"Statement": {"Effect": "Allow", "Condition": {"Bool": {"aws:SecureTransport": "true"}}}, "Id": "x"}'
    start, end = statement_positions(text)[0]
    assert start == {"Line": 1, "Column": 15} and text[end["Column"] - 1] == "}"
    assert end["Column"] == text.index(', "Id"')


def test_no_statement_and_unwalkable_text():
    assert statement_positions('{"Version": "2012-10-17"}') == []
    assert statement_positions("not json") == []
