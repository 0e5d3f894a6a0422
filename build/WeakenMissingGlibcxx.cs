using System;
using System.Collections.Generic;
using System.IO;
using System.Text;
using Microsoft.Build.Framework;
using Microsoft.Build.Utilities;

// libLibTorchSharp.so (TorchSharp 0.107) is linked against GCC 13 and asks for GLIBCXX_3.4.32 only through the
// marker symbol std::ios_base_library_init, which it never calls. Debian 12's libstdc++ stops at 3.4.30, so the
// loader refuses the library. Marking each version that the system library lacks VER_FLG_WEAK in .gnu.version_r
// turns the hard failure into nothing at all; versions the system has are left untouched.
public sealed class WeakenMissingGlibcxx : Task
{
    const uint ShtGnuVerneed = 0x6ffffffe;
    const ushort VerFlgWeak = 0x2;

    [Required] public string Library { get; set; } = "";
    [Required] public string SystemLibStdCxx { get; set; } = "";

    public override bool Execute()
    {
        if (!File.Exists(Library) || !File.Exists(SystemLibStdCxx)) return true;
        var available = Encoding.ASCII.GetString(File.ReadAllBytes(SystemLibStdCxx));
        var elf = File.ReadAllBytes(Library);
        if (elf.Length < 64 || elf[0] != 0x7f || elf[1] != (byte)'E' || elf[4] != 2 || elf[5] != 1)
        {
            Log.LogError($"{Library}: not a little-endian ELF64 file");
            return false;
        }
        var shoff = (long)BitConverter.ToUInt64(elf, 0x28);
        int shentsize = BitConverter.ToUInt16(elf, 0x3A), shnum = BitConverter.ToUInt16(elf, 0x3C);
        var weakened = new List<string>();
        for (var i = 0; i < shnum; i++)
        {
            var sh = shoff + i * shentsize;
            if (BitConverter.ToUInt32(elf, (int)sh + 4) != ShtGnuVerneed) continue;
            var offset = (long)BitConverter.ToUInt64(elf, (int)sh + 0x18);
            var strtab = shoff + BitConverter.ToUInt32(elf, (int)sh + 0x28) * shentsize;
            var strOffset = (long)BitConverter.ToUInt64(elf, (int)strtab + 0x18);
            var count = BitConverter.ToUInt32(elf, (int)sh + 0x2C);
            var need = offset;
            for (var n = 0; n < count; n++)
            {
                var aux = need + BitConverter.ToUInt32(elf, (int)need + 8);
                for (var a = 0; a < BitConverter.ToUInt16(elf, (int)need + 2); a++)
                {
                    var name = ReadString(elf, strOffset + BitConverter.ToUInt32(elf, (int)aux + 8));
                    var flags = BitConverter.ToUInt16(elf, (int)aux + 4);
                    if (name.StartsWith("GLIBCXX_", StringComparison.Ordinal) && !available.Contains(name + "\0")
                        && (flags & VerFlgWeak) == 0)
                    {
                        BitConverter.GetBytes((ushort)(flags | VerFlgWeak)).CopyTo(elf, (int)aux + 4);
                        weakened.Add(name);
                    }
                    aux += BitConverter.ToUInt32(elf, (int)aux + 12);
                }
                need += BitConverter.ToUInt32(elf, (int)need + 12);
            }
        }
        if (weakened.Count == 0) return true;
        File.WriteAllBytes(Library, elf);
        Log.LogMessage(MessageImportance.High,
            $"{Path.GetFileName(Library)}: marked {string.Join(", ", weakened)} weak (missing from {SystemLibStdCxx})");
        return true;
    }

    static string ReadString(byte[] bytes, long offset)
    {
        var end = Array.IndexOf(bytes, (byte)0, (int)offset);
        return Encoding.ASCII.GetString(bytes, (int)offset, end - (int)offset);
    }
}
