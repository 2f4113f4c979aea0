"""Usage texts of the AGI commands, sent in a ``520`` reply.

res_agi.c registers each command with ``usage = ast_xmldoc_build_description``:
the ``<description>`` paragraphs, one line each (whitespace collapsed, inner
markup such as ``<replaceable>`` left as is), as recorded in agi_session.txt
for GET DATA and SET VARIABLE.  Texts are the Asterisk 22 XML documentation
of res/res_agi.c.  CHANNEL STATUS also has an enumlist of return values,
rendered here one ``<value> - <meaning>`` line each.
"""

from __future__ import annotations

_USAGE = {
    "answer": ["Answers channel if not already in answer state. Returns <literal>-1</literal> on channel "
               "failure, or <literal>0</literal> if successful."],
    "asyncagi break": ["Interrupts expected flow of Async AGI commands and returns control to previous source "
                       "(typically, the PBX dialplan)."],
    "channel status": ["Returns the status of the specified <replaceable>channelname</replaceable>. If no channel "
                       "name is given then returns the status of the current channel.", "Return values:",
                       "0 - Channel is down and available.", "1 - Channel is down, but reserved.",
                       "2 - Channel is off hook.", "3 - Digits (or equivalent) have been dialed.",
                       "4 - Line is ringing.", "5 - Remote end is ringing.", "6 - Line is up.",
                       "7 - Line is busy."],
    "control stream file": ["Send the given file, allowing playback to be controlled by the given digits, if any. "
                            "Use double quotes for the digits if you wish none to be permitted. Returns "
                            "<literal>0</literal> if playback completes without a digit being pressed, or the "
                            "ASCII numerical value of the digit if one was pressed, or <literal>-1</literal> on "
                            "error or if the channel was disconnected."],
    "database del": ["Deletes an entry in the Asterisk database for a given <replaceable>family</replaceable> "
                     "and <replaceable>key</replaceable>.",
                     "Returns <literal>1</literal> if successful, <literal>0</literal> otherwise."],
    "database deltree": ["Deletes a <replaceable>family</replaceable> or specific <replaceable>keytree</replaceable> "
                         "within a <replaceable>family</replaceable> in the Asterisk database.",
                         "Returns <literal>1</literal> if successful, <literal>0</literal> otherwise."],
    "database get": ["Retrieves an entry in the Asterisk database for a given <replaceable>family</replaceable> "
                     "and <replaceable>key</replaceable>.",
                     "Returns <literal>0</literal> if <replaceable>key</replaceable> is not set. Returns "
                     "<literal>1</literal> if <replaceable>key</replaceable> is set and returns the variable "
                     "in parenthesis.", "Example return code: 200 result=1 (testvariable)"],
    "database put": ["Adds or updates an entry in the Asterisk database for a given "
                     "<replaceable>family</replaceable>, <replaceable>key</replaceable>, and "
                     "<replaceable>value</replaceable>.",
                     "Returns <literal>1</literal> if successful, <literal>0</literal> otherwise."],
    "exec": ["Executes <replaceable>application</replaceable> with given <replaceable>options</replaceable>.",
             "Returns whatever the <replaceable>application</replaceable> returns, or <literal>-2</literal> on "
             "failure to find <replaceable>application</replaceable>."],
    "get data": ["Stream the given <replaceable>file</replaceable>, and receive DTMF data.",
                 "Returns the digits received from the channel at the other end."],
    "get full variable": ["Returns <literal>0</literal> if <replaceable>variablename</replaceable> is not set or "
                          "channel does not exist. Returns <literal>1</literal> if "
                          "<replaceable>variablename</replaceable> is set and returns the variable in parenthesis. "
                          "Understands complex variable names and builtin variables, unlike GET VARIABLE.",
                          "Example return code: 200 result=1 (testvariable)"],
    "get option": ["Behaves similar to STREAM FILE but used with a timeout option."],
    "get variable": ["Returns <literal>0</literal> if <replaceable>variablename</replaceable> is not set. Returns "
                     "<literal>1</literal> if <replaceable>variablename</replaceable> is set and returns the "
                     "variable in parentheses.", "Example return code: 200 result=1 (testvariable)"],
    "hangup": ["Hangs up the specified channel. If no channel name is given, hangs up the current channel"],
    "noop": ["Does nothing."],
    "receive char": ["Receives a character of text on a channel. Most channels do not support the reception of "
                     "text. Returns the decimal value of the character if one is received, or "
                     "<literal>0</literal> if the channel does not support text reception. Returns "
                     "<literal>-1</literal> only on error/hangup."],
    "receive text": ["Receives a string of text on a channel. Most channels do not support the reception of text. "
                     "Returns <literal>-1</literal> for failure or <literal>1</literal> for success, and the "
                     "string in parenthesis."],
    "say alpha": ["Say a given character string, returning early if any of the given DTMF digits are received "
                  "on the channel. Returns <literal>0</literal> if playback completes without a digit being "
                  "pressed, or the ASCII numerical value of the digit if one was pressed or <literal>-1</literal> "
                  "on error/hangup."],
    "say digits": ["Say a given digit string, returning early if any of the given DTMF digits are received on "
                   "the channel. Returns <literal>0</literal> if playback completes without a digit being "
                   "pressed, or the ASCII numerical value of the digit if one was pressed or "
                   "<literal>-1</literal> on error/hangup."],
    "say number": ["Say a given number, returning early if any of the given DTMF digits are received on the "
                   "channel. Returns <literal>0</literal> if playback completes without a digit being pressed, "
                   "or the ASCII numerical value of the digit if one was pressed or <literal>-1</literal> on "
                   "error/hangup."],
    "say phonetic": ["Say a given character string with phonetics, returning early if any of the given DTMF "
                     "digits are received on the channel. Returns <literal>0</literal> if playback completes "
                     "without a digit pressed, the ASCII numerical value of the digit if one was pressed, or "
                     "<literal>-1</literal> on error/hangup."],
    "send text": ["Sends the given text on a channel. Most channels do not support the transmission of text. "
                  "Returns <literal>0</literal> if text is sent, or if the channel does not support text "
                  "transmission. Returns <literal>-1</literal> only on error/hangup."],
    "set autohangup": ["Cause the channel to automatically hangup at <replaceable>time</replaceable> seconds in "
                       "the future. Of course it can be hungup before then as well. Setting to "
                       "<literal>0</literal> will cause the autohangup feature to be disabled on this channel."],
    "set callerid": ["Changes the callerid of the current channel."],
    "set context": ["Sets the context for continuation upon exiting the application."],
    "set extension": ["Changes the extension for continuation upon exiting the application."],
    "set music": ["Enables/Disables the music on hold generator. If <replaceable>class</replaceable> is not "
                  "specified, then the <literal>default</literal> music on hold class will be used. This "
                  "generator will be stopped automatically when playing a file.",
                  "Always returns <literal>0</literal>."],
    "set priority": ["Changes the priority for continuation upon exiting the application. The priority must be "
                     "a valid priority or label."],
    "set variable": ["Sets a variable to the current channel."],
    "stream file": ["Send the given file, allowing playback to be interrupted by the given digits, if any. "
                    "Returns <literal>0</literal> if playback completes without a digit being pressed, or the "
                    "ASCII numerical value of the digit if one was pressed, or <literal>-1</literal> on error or "
                    "if the channel was disconnected. If musiconhold is playing before calling stream file it "
                    "will be automatically stopped and will not be restarted after completion."],
    "verbose": ["Sends <replaceable>message</replaceable> to the console via verbose message system. "
                "<replaceable>level</replaceable> is the verbose level (1-4). Always returns <literal>1</literal>"],
    "wait for digit": ["Waits up to <replaceable>timeout</replaceable> milliseconds for channel to receive a DTMF "
                       "digit. Returns <literal>-1</literal> on channel failure, <literal>0</literal> if no digit "
                       "is received in the timeout, or the numerical value of the ascii of the digit if one is "
                       "received. Use <literal>-1</literal> for the <replaceable>timeout</replaceable> value if "
                       "you desire the call to block indefinitely."],
}


def usage_reply(command: str) -> str:
    """The whole multi-line 520 reply for ``command`` (lower-case words)."""
    paragraphs = _USAGE.get(command)
    if not paragraphs:
        return "520 Invalid command syntax.  Proper usage not available.\n"
    return ("520-Invalid command syntax.  Proper usage follows:\n" + "\n".join(paragraphs) + "\n"
            "520 End of proper usage.\n")
