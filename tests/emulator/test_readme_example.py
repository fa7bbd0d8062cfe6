import pytest
from canvasapi import Canvas
from canvasapi.exceptions import InvalidAccessToken

pytestmark = pytest.mark.filterwarnings("ignore:Canvas may respond unexpectedly")  # it is http://127.0.0.1


def test_an_expired_token_is_refused(lmsauth_emulator):
    canvas = Canvas(lmsauth_emulator.url, lmsauth_emulator.authorize()["access_token"])  # a real code flow
    assert canvas.get_current_user().name == "Sam Student"
    lmsauth_emulator.advance_clock(3601)  # an hour and a second later, on the server
    with pytest.raises(InvalidAccessToken):
        canvas.get_current_user()
