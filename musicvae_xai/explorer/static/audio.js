// A small Web Audio synthesiser: plays notes {pitch, start, end} (in beats) at a tempo, with a
// playback position for cursors. No samples, no downloads: two oscillators and an envelope per note.

export class Player {
  constructor() {
    this.ctx = null;
    this.voices = [];
    this.playing = null;  // {t0, beats, qpm, loop, next}
    this.timer = null;
  }

  // Creates/resumes the AudioContext; call from a user gesture (browsers start audio muted otherwise).
  unlock() {
    const AC = window.AudioContext || window.webkitAudioContext;
    if (!AC) return false;
    if (!this.ctx) {
      this.ctx = new AC();
      this.out = this.ctx.createGain();
      this.out.gain.value = 0.55;
      const filter = this.ctx.createBiquadFilter();
      filter.type = "lowpass";
      filter.frequency.value = 3800;
      const comp = this.ctx.createDynamicsCompressor();
      this.out.connect(filter).connect(comp).connect(this.ctx.destination);
    }
    if (this.ctx.state === "suspended") this.ctx.resume();
    return true;
  }

  get unlocked() { return this.ctx !== null; }

  // getNotes(): [{pitch, start, end}] (beats) and the length in beats; re-read at every loop turn.
  play(getNotes, qpm, { loop = false, onEnd = null } = {}) {
    if (!this.unlock()) return;
    this.stop();
    const turn = () => {
      const { notes, beats } = getNotes();
      const spb = 60 / qpm;
      const t0 = this.ctx.currentTime + 0.05;
      for (const n of notes) this.voice(n.pitch, t0 + n.start * spb, t0 + n.end * spb);
      this.playing = { t0, beats, qpm, loop };
      this.timer = setTimeout(() => {
        if (this.playing && this.playing.loop) turn();
        else { this.playing = null; if (onEnd) onEnd(); }
      }, (beats * spb + 0.05) * 1000);
    };
    turn();
  }

  voice(pitch, start, end) {
    const ctx = this.ctx;
    const f = 440 * Math.pow(2, (pitch - 69) / 12);
    const env = ctx.createGain();
    env.gain.setValueAtTime(0, start);
    env.gain.linearRampToValueAtTime(0.3, start + 0.008);
    env.gain.exponentialRampToValueAtTime(0.16, start + 0.14);
    const release = Math.max(start + 0.15, end - 0.01);
    env.gain.setValueAtTime(0.16, release);
    env.gain.linearRampToValueAtTime(0.0001, release + 0.07);
    env.connect(this.out);
    const oscs = [["triangle", f, 1.0], ["sine", f * 2, 0.18], ["sine", f * 0.5, 0.12]].map(([type, freq, level]) => {
      const o = ctx.createOscillator();
      o.type = type;
      o.frequency.value = freq;
      const g = ctx.createGain();
      g.gain.value = level;
      o.connect(g).connect(env);
      o.start(start);
      o.stop(release + 0.1);
      return o;
    });
    this.voices.push(...oscs);
    if (this.voices.length > 400) this.voices.splice(0, 200);
  }

  stop() {
    clearTimeout(this.timer);
    this.playing = null;
    if (!this.ctx) return;
    const now = this.ctx.currentTime;
    for (const o of this.voices) { try { o.stop(now + 0.02); } catch (_) { /* already stopped */ } }
    this.voices = [];
  }

  // Current playback position in beats, or null when nothing plays.
  position() {
    if (!this.playing || !this.ctx) return null;
    const beats = (this.ctx.currentTime - this.playing.t0) * this.playing.qpm / 60;
    return beats >= 0 && beats <= this.playing.beats ? beats : null;
  }
}
