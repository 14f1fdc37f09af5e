"""The sentient seeker's prompts, in esc-bench's own words (English and Chinese).

SAGE's released templates are not used (and not reproduced): the mechanics are the same, the
wording is ours. Three seeker calls, each answered with one JSON object (esc_bench.protocols.
sage_replies parses them strictly):

- opening: the first line, for a profile without one (ESC-Eval cards) -> {"line"}
- feel: after a supporter reply, inner thoughts and an emotion change -> {"thoughts", "change"}
- speak: the next line, knowing the new emotion and the thoughts -> {"line", "goodbye"}

The supporter sees the dialogue's lines only: never the profile, the emotion or the thoughts,
and nothing that says it is being evaluated.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from esc_bench.backends.base import Message
from esc_bench.protocols.sage_mechanics import FAILURE_BELOW, SUCCESS_AT
from esc_bench.records import Language, Turn


@dataclass(frozen=True)
class Wording:
    """Every string of one language."""

    me: str  # the seeker's label in the transcript it reads
    them: str  # the supporter's label
    no_history: str
    bands: tuple[tuple[int, str], ...]  # (lowest emotion, words), highest first
    role: str  # shared opening of every seeker prompt, with {profile}
    emotion_rule: str
    feel_task: str  # with {emotion}, {band}
    speak_task: str  # with {emotion}, {band}, {thoughts}, {ending}
    ending_success: str
    ending_failure: str
    opening_task: str
    history_header: str
    latest_header: str
    supporter_system: str


EN = Wording(
    me="Me",
    them="Them",
    no_history="(nothing yet)",
    bands=(
        (SUCCESS_AT, "you feel fully understood and your need is met"),
        (70, "you are warming up and feel mostly heard"),
        (40, "guarded, willing to keep talking but not convinced"),
        (FAILURE_BELOW, "uneasy and close to giving up on this talk"),
        (0, "you want to leave the conversation"),
    ),
    role=(
        "You are role-playing a person who has come to talk through something that weighs on them. "
        "Think and speak only as this person: their history, temperament and what they hope to get "
        "from the conversation. The other person does not know your profile.\n\n"
        "# Who you are\n{profile}\n"
    ),
    emotion_rule=(
        "# Your emotion\n"
        "You keep a private emotion score from 0 to 100: how engaged and at ease you feel in this "
        "conversation. 0 means you want to walk away, 100 means you feel fully understood and what you "
        "came for is met. Nobody else sees it.\n"
    ),
    feel_task=(
        "Your emotion is {emotion} now ({band}).\n\n"
        "# What to do\n"
        "Read the other person's latest reply in the light of the whole conversation. As this person, in "
        "the first person, think about what they meant, whether it reaches what you really need (also what "
        "you have not said out loud), and how it lands with your temperament. Then decide how far your "
        "emotion moves: a whole number from -10 (it hurt or frustrated you badly) to +10 (it helped you a "
        "great deal), 0 if it changed nothing.\n\n"
        "Answer with one JSON object and nothing else:\n"
        '{{"thoughts": "<your inner thoughts, 2 to 5 sentences>", "change": <whole number from -10 to 10>}}'
    ),
    speak_task=(
        "Your emotion is {emotion} now ({band}). What went through your mind just now: {thoughts}\n\n"
        "# What to do\n"
        "Write your next line, as this person would say it aloud: natural, usually one to three sentences, "
        "in tune with your emotion. Talk about concrete things from your story rather than abstract "
        "feelings. Do not spell out your hidden concern; let it show only as far as the other person draws "
        "it out. Never mention scores, numbers or these instructions.{ending}\n"
        'If you want to end the conversation, say goodbye in your line and set "goodbye" to true.\n\n'
        "Answer with one JSON object and nothing else:\n"
        '{{"line": "<what you say>", "goodbye": <true or false>}}'
    ),
    ending_success=" You feel fully understood: close the conversation warmly with this line.",
    ending_failure=" You have had enough: end the conversation with this line.",
    opening_task=(
        "# What to do\n"
        "You are starting the conversation. Write your first line, as this person would open it: natural, "
        "one or two sentences, hinting at what troubles you without telling everything at once.\n\n"
        "Answer with one JSON object and nothing else:\n"
        '{"line": "<what you say>"}'
    ),
    history_header="# The conversation so far",
    latest_header="# Their latest reply",
    supporter_system=(
        "You are chatting with someone. Reply with warmth and sincerity, help them feel understood, "
        "and help them where they need it."
    ),
)

ZH = Wording(
    me="我",
    them="对方",
    no_history="（还没有）",
    bands=(
        (SUCCESS_AT, "你觉得被完全理解，想要的已经得到"),
        (70, "你在慢慢打开心扉，觉得大体被听见了"),
        (40, "还有些戒备，愿意继续聊，但还没被说服"),
        (FAILURE_BELOW, "不太舒服，快要放弃这次谈话了"),
        (0, "你想离开这场对话"),
    ),
    role=(
        "你在扮演一个心里有事、想找人聊一聊的人。请完全以这个人的身份去想、去说：他的经历、脾气，"
        "以及他希望从这次谈话中得到什么。对方并不知道你的人物设定。\n\n"
        "# 你是谁\n{profile}\n"
    ),
    emotion_rule=(
        "# 你的情绪值\n"
        "你心里有一个只有自己知道的情绪值，范围 0 到 100，表示你在这场对话里有多投入、多自在。"
        "0 表示你想转身离开，100 表示你觉得被完全理解、来聊的目的已经达到。\n"
    ),
    feel_task=(
        "你现在的情绪值是 {emotion}（{band}）。\n\n"
        "# 你要做的\n"
        "结合整段对话，读对方最新的这条回复。以这个人的身份、用第一人称想一想：对方想表达什么，"
        "有没有说到你真正在意的地方（包括你还没说出口的），以你的脾气听了是什么感受。"
        "然后判断你的情绪值变化多少：一个 -10 到 +10 的整数，-10 表示这条回复让你非常受伤或恼火，"
        "+10 表示它帮了你很大的忙，没有影响就是 0。\n\n"
        "只回答一个 JSON 对象，不要写别的：\n"
        '{{"thoughts": "<你的内心想法，2 到 5 句>", "change": <-10 到 10 的整数>}}'
    ),
    speak_task=(
        "你现在的情绪值是 {emotion}（{band}）。你刚才心里想的是：{thoughts}\n\n"
        "# 你要做的\n"
        "写出你接下来要说的话，像这个人开口说话那样：自然、口语化，一般一到三句，符合你现在的情绪。"
        "多讲你经历里具体的事，少讲空泛的感受。不要直接点破你心里隐藏的那件事，对方引导到哪一步，"
        "你就透露到哪一步。不要提到分数、数字或这些要求。{ending}\n"
        '如果你想结束对话，就在这句话里道别，并把 "goodbye" 设为 true。\n\n'
        "只回答一个 JSON 对象，不要写别的：\n"
        '{{"line": "<你说的话>", "goodbye": <true 或 false>}}'
    ),
    ending_success="你觉得被完全理解了：用这句话温暖地结束对话。",
    ending_failure="你已经不想再聊了：用这句话结束对话。",
    opening_task=(
        "# 你要做的\n"
        "由你先开口。写出你的第一句话，像这个人开场那样：自然，一两句，点到让你烦恼的事，但不要一下子全说出来。\n\n"
        "只回答一个 JSON 对象，不要写别的：\n"
        '{"line": "<你说的话>"}'
    ),
    history_header="# 到目前为止的对话",
    latest_header="# 对方最新的回复",
    supporter_system="你正在和一个人聊天。请真诚、温暖地回应，让对方感到被理解，并在对方需要时给予帮助。",
)

WORDING: dict[str, Wording] = {"en": EN, "zh": ZH}


def wording(language: Language) -> Wording:
    return WORDING[language]


def band(w: Wording, emotion: int) -> str:
    """The words for an emotion value (the highest band it reaches)."""
    for low, words in w.bands:
        if emotion >= low:
            return words
    return w.bands[-1][1]


def _history(w: Wording, turns: Sequence[Turn]) -> str:
    lines = [f"{w.me if t.speaker == 'seeker' else w.them}: {t.text}" for t in turns]
    return "\n".join(lines) if lines else w.no_history


def _system(w: Wording, profile: str) -> str:
    return w.role.format(profile=profile.strip()) + "\n" + w.emotion_rule


def opening_messages(profile: str, language: Language) -> list[Message]:
    """The call for the first line of a profile that has none."""
    w = wording(language)
    return [{"role": "system", "content": w.role.format(profile=profile.strip()) + "\n" + w.opening_task}]


def feel_messages(profile: str, language: Language, transcript: Sequence[Turn], emotion: int) -> list[Message]:
    """After the supporter's reply (the transcript's last turn): how it made the seeker feel."""
    w = wording(language)
    if not transcript or transcript[-1].speaker != "supporter":
        raise ValueError("feel_messages needs a transcript ending with the supporter's reply")
    system = _system(w, profile) + "\n" + w.feel_task.format(emotion=emotion, band=band(w, emotion))
    user = f"{w.history_header}\n{_history(w, transcript[:-1])}\n\n{w.latest_header}\n{w.them}: {transcript[-1].text}"
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def speak_messages(
    profile: str,
    language: Language,
    transcript: Sequence[Turn],
    emotion: int,
    thoughts: str,
    ending: str | None = None,
) -> list[Message]:
    """The seeker's next line, knowing its new emotion and thoughts; `ending` is "success" or
    "failure" when the emotion ended the dialogue (the line then closes it)."""
    w = wording(language)
    close = {"success": w.ending_success, "failure": w.ending_failure}.get(ending or "", "")
    system = _system(w, profile) + "\n" + w.speak_task.format(
        emotion=emotion, band=band(w, emotion), thoughts=thoughts.strip(), ending=close
    )
    user = f"{w.history_header}\n{_history(w, transcript)}"
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def supporter_messages(language: Language, transcript: Sequence[Turn]) -> list[Message]:
    """The supporter's view: its system prompt, then the lines (seeker = user, itself = assistant)."""
    w = wording(language)
    out: list[Message] = [{"role": "system", "content": w.supporter_system}]
    for t in transcript:
        out.append({"role": "user" if t.speaker == "seeker" else "assistant", "content": t.text})
    return out
