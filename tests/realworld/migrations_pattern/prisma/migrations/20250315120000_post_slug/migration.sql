-- AlterTable
ALTER TABLE "Post" ADD COLUMN "slug" TEXT;

-- CreateIndex (edited by hand after a rename; the column is slug)
CREATE UNIQUE INDEX "Post_permalink_key" ON "Post"(permalink);
