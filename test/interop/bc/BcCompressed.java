// Bouncy Castle as the independent CompressedData (RFC 3274) peer for the test suite.
//   java BcCompressed compress   <in> <out>   streams a ContentInfo{CompressedData} (BER) with zlib
//   java BcCompressed decompress <in> <out>   reads any ContentInfo{CompressedData}
import java.io.*;
import org.bouncycastle.cms.*;
import org.bouncycastle.cms.jcajce.ZlibCompressor;
import org.bouncycastle.cms.jcajce.ZlibExpanderProvider;

public class BcCompressed {
  public static void main(String[] args) throws Exception {
    try (InputStream in = new BufferedInputStream(new FileInputStream(args[1]));
         OutputStream out = new BufferedOutputStream(new FileOutputStream(args[2]))) {
      if (args[0].equals("compress")) {
        CMSCompressedDataStreamGenerator gen = new CMSCompressedDataStreamGenerator();
        try (OutputStream c = gen.open(out, new ZlibCompressor())) { in.transferTo(c); }
      } else {
        CMSCompressedDataParser p = new CMSCompressedDataParser(in);
        p.getContent(new ZlibExpanderProvider()).getContentStream().transferTo(out);
      }
    }
  }
}
