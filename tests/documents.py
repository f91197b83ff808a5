"""Small template documents shared by tests of several apps."""

# The smallest useful template: one callback state, which is also the end.
SIGN_OFF = """metadata: {name: Sign-off}
input: {type: object}
startsAt: sign-off
states:
  sign-off:
    type: callback
    title: Sign off
    input: {type: object, properties: {approved: {type: boolean}}}
    end: true
"""

# One callback state named `wait`: a Run starts paused there and ends with its input.
WAIT_FIRST = """
metadata: {name: Wait first}
input: {type: object}
startsAt: wait
states:
  wait:
    type: callback
    title: Wait
    input: {type: object, properties: {ok: {type: boolean}}}
    end: true
"""
